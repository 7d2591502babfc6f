"""Per-source running totals, and contributions per (batch, day, source).

Existing history is carried over as it was recorded: each existing day total becomes one
source total of the "no source" slice (source ""), so sources still sum to their days. New
applies split by the events' own source from here on.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0007_metric_unit_and_raw_retention"),
        ("events", "0005_ledger_and_heartbeat_moved"),
    ]

    operations = [
        migrations.CreateModel(
            name="DaySourceTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("day", models.DateField()),
                ("source", models.CharField(blank=True, default="", max_length=64)),
                ("value", models.DecimalField(decimal_places=6, default=0, max_digits=28)),
                ("event_count", models.BigIntegerField(default=0)),
                ("late_event_count", models.BigIntegerField(default=0)),
            ],
            options={
                "ordering": ["day_total_id", "source"],
            },
        ),
        migrations.RemoveConstraint(
            model_name="contribution",
            name="contribution_once_per_batch_day",
        ),
        migrations.AddField(
            model_name="contribution",
            name="source",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddConstraint(
            model_name="contribution",
            constraint=models.UniqueConstraint(
                condition=models.Q(("batch__isnull", False)),
                fields=("batch", "day_total", "source"),
                name="contribution_once_per_batch_day_source",
            ),
        ),
        migrations.AddField(
            model_name="daysourcetotal",
            name="day_total",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="sources",
                to="aggregation.daytotal",
            ),
        ),
        migrations.AddField(
            model_name="daysourcetotal",
            name="metric",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="aggregation.metric",
            ),
        ),
        migrations.AddIndex(
            model_name="daysourcetotal",
            index=models.Index(fields=["metric", "day", "source"], name="daysource_metric_day"),
        ),
        migrations.AddIndex(
            model_name="daysourcetotal",
            index=models.Index(fields=["metric", "source", "day"], name="daysource_metric_source"),
        ),
        migrations.AddConstraint(
            model_name="daysourcetotal",
            constraint=models.UniqueConstraint(
                fields=("day_total", "source"), name="daysource_day_source"
            ),
        ),
        migrations.RunSQL(
            """
            INSERT INTO aggregation_daysourcetotal
                (day_total_id, metric_id, day, source, value, event_count, late_event_count)
            SELECT id, metric_id, day, '', value, event_count, late_event_count
            FROM aggregation_daytotal WHERE event_count > 0 OR value <> 0
            """,
            migrations.RunSQL.noop,
        ),
    ]
