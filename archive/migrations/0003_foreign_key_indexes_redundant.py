"""Archive manifests lose the index of their day total alone: the unique (day total, sha256)
starts with it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0011_day_total_metric_index_redundant"),
        ("archive", "0002_archive_schedule"),
    ]

    operations = [
        migrations.AlterField(
            model_name="archivemanifest",
            name="day_total",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="archives",
                to="aggregation.daytotal",
            ),
        ),
    ]
