"""Alert deliveries lose the index of their alert alone: the unique (alert, channel) starts
with it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0001_alerts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alertdelivery",
            name="alert",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="alerts.alert",
            ),
        ),
    ]
