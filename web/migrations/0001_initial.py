"""Worker heartbeats move from events to the operations layer. The table keeps its rows: the
model is created here in state only, over the existing table, which is then renamed."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("events", "0004_cheaper_event_inserts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="WorkerHeartbeat",
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
                        ("hostname", models.CharField(max_length=255, unique=True)),
                        ("pid", models.PositiveIntegerField()),
                        ("started_at", models.DateTimeField()),
                        ("last_seen", models.DateTimeField()),
                    ],
                    options={"db_table": "events_workerheartbeat"},
                ),
            ],
        ),
        migrations.AlterModelTable(name="workerheartbeat", table=None),
    ]
