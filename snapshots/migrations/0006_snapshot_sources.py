"""Per-source slices of every snapshot, immutable like the snapshots: the same trigger
function refuses UPDATE and DELETE on the new table. Existing snapshots get one slice of
the "no source" kind (source ""), as their days' source totals do (aggregation 0007)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0008_day_source_totals"),
        ("snapshots", "0005_reconcile_task_moved"),
    ]

    operations = [
        migrations.CreateModel(
            name="SnapshotSource",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("sequence", models.PositiveIntegerField()),
                ("source", models.CharField(blank=True, default="", max_length=64)),
                ("value", models.DecimalField(decimal_places=6, max_digits=28)),
                ("event_count", models.BigIntegerField()),
                ("late_event_count", models.BigIntegerField(default=0)),
                ("change", models.DecimalField(decimal_places=6, max_digits=28)),
                ("change_events", models.PositiveIntegerField()),
                ("late_events", models.PositiveIntegerField(default=0)),
                (
                    "metric",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="aggregation.metric",
                    ),
                ),
                (
                    "snapshot",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sources",
                        to="snapshots.snapshot",
                    ),
                ),
            ],
            options={
                "ordering": ["snapshot_id", "source"],
                "indexes": [
                    models.Index(
                        fields=["metric", "day", "source", "sequence"],
                        name="snapshotsource_metric_day",
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("snapshot", "source"), name="snapshotsource_once"
                    )
                ],
            },
        ),
        migrations.RunSQL(
            """
            CREATE OR REPLACE FUNCTION snapshots_snapshot_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION USING
                    MESSAGE = 'snapshots are immutable: ' || TG_OP || ' on '
                              || TG_TABLE_NAME || ' is refused',
                    ERRCODE = 'integrity_constraint_violation';
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER snapshots_snapshotsource_immutable
                BEFORE UPDATE OR DELETE ON snapshots_snapshotsource
                FOR EACH ROW EXECUTE FUNCTION snapshots_snapshot_immutable();
            """,
            "DROP TRIGGER IF EXISTS snapshots_snapshotsource_immutable "
            "ON snapshots_snapshotsource;",
        ),
        migrations.RunSQL(
            """
            INSERT INTO snapshots_snapshotsource
                (snapshot_id, metric_id, day, sequence, source, value, event_count,
                 late_event_count, change, change_events, late_events)
            SELECT id, metric_id, day, sequence, '', value, event_count, late_event_count,
                   change, change_events, late_events
            FROM snapshots_snapshot
            """,
            migrations.RunSQL.noop,
        ),
    ]
