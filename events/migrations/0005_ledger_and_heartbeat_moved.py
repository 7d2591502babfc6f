"""Contribution (now aggregation's) and WorkerHeartbeat (now web's) leave events' state; their
tables were taken over by aggregation 0006 and web 0001, so nothing changes in the database."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0006_contribution"),
        ("events", "0004_cheaper_event_inserts"),
        ("web", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(
                    model_name="contribution",
                    name="batch",
                ),
                migrations.RemoveField(
                    model_name="contribution",
                    name="day_total",
                ),
                migrations.AlterField(
                    model_name="quarantinedevent",
                    name="contribution",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="accepted",
                        to="aggregation.contribution",
                    ),
                ),
                migrations.DeleteModel(
                    name="WorkerHeartbeat",
                ),
                migrations.DeleteModel(
                    name="Contribution",
                ),
            ],
        ),
    ]
