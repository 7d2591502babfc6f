"""Cheaper event inserts: drop the LIKE-pattern index beside the unique index on event_id
(nothing searches event ids by prefix) and the database foreign key from events to metrics
(the insert copies metric_id from the event's day total, whose own key holds the metric).

The unique constraint itself is kept as it is: on PostgreSQL only the extra index goes, so
the migration does not rebuild the unique index of a large events table.
"""

import django.db.models.deletion
from django.db import migrations, models

LIKE_INDEX = "events_event_event_id_dde76dea_like"


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {LIKE_INDEX}")


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX} "
            "ON events_event (event_id varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0002_reporting_timezone_and_default_metric"),
        ("events", "0003_rejected_events_and_apply_errors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="event_id",
                    field=models.CharField(max_length=128),
                ),
                migrations.AddConstraint(
                    model_name="event",
                    constraint=models.UniqueConstraint(
                        fields=("event_id",), name="events_event_event_id_key"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_like_index, create_like_index)],
        ),
        migrations.AlterField(
            model_name="event",
            name="metric",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to="aggregation.metric",
            ),
        ),
    ]
