"""The ledger of contributions moves from events to aggregation, which owns the day totals
and now every write to them. The table keeps its rows: the model is created here in state
only, over the existing table, which is then renamed to aggregation_contribution."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0005_day_total_hot_updates"),
        ("events", "0004_cheaper_event_inserts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Contribution",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("batch", "Applied batch"),
                                    ("accepted", "Accepted from quarantine"),
                                ],
                                default="batch",
                                max_length=16,
                            ),
                        ),
                        ("value", models.DecimalField(decimal_places=6, max_digits=28)),
                        ("event_count", models.PositiveIntegerField()),
                        ("late_event_count", models.PositiveIntegerField(default=0)),
                        ("too_late_event_count", models.PositiveIntegerField(default=0)),
                        ("applied_at", models.DateTimeField()),
                        ("snapshot_sequence", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "batch",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="contributions",
                                to="events.ingestbatch",
                            ),
                        ),
                        (
                            "day_total",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="contributions",
                                to="aggregation.daytotal",
                            ),
                        ),
                    ],
                    options={
                        "ordering": ["id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("snapshot_sequence__isnull", True)),
                                fields=["day_total"],
                                name="contribution_unsnapshotted",
                            ),
                            models.Index(
                                fields=["day_total", "snapshot_sequence"],
                                name="contribution_snapshot",
                            ),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("batch__isnull", False)),
                                fields=("batch", "day_total"),
                                name="contribution_once_per_batch_day",
                            )
                        ],
                        "db_table": "events_contribution",
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="contribution", table=None),
    ]
