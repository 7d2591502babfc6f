"""Snapshots and their source rows lose the single-column indexes of their foreign keys: the
unique (day total, sequence), (metric, day, sequence) and (snapshot, source) and the (metric,
day, source, sequence) index start with those columns. Each snapshot run writes fewer index
entries per row. Only indexes are dropped: the rows stay untouched, as immutability demands."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0011_day_total_metric_index_redundant"),
        ("snapshots", "0008_snapshot_no_truncate"),
    ]

    operations = [
        migrations.AlterField(
            model_name="snapshot",
            name="day_total",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="snapshots",
                to="aggregation.daytotal",
            ),
        ),
        migrations.AlterField(
            model_name="snapshot",
            name="metric",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="snapshots",
                to="aggregation.metric",
            ),
        ),
        migrations.AlterField(
            model_name="snapshotsource",
            name="metric",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="aggregation.metric",
            ),
        ),
        migrations.AlterField(
            model_name="snapshotsource",
            name="snapshot",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="sources",
                to="snapshots.snapshot",
            ),
        ),
    ]
