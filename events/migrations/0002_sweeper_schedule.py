"""Create the sweeper schedule that re-enqueues batches left unapplied."""

from django.conf import settings
from django.db import migrations

from common.beat import periodic_task_ensure, periodic_task_remove

TASK = "events.tasks.sweep_unapplied_batches"


def create_schedule(apps, schema_editor):
    periodic_task_ensure(
        apps,
        task=TASK,
        name="Sweep unapplied batches",
        description=(
            "Re-enqueues ingest batches still unapplied after SWEEP_AFTER_SECONDS "
            "(a lost message, a dead worker, a broker outage)."
        ),
        every_seconds=settings.SWEEP_INTERVAL_SECONDS,
    )


def remove_schedule(apps, schema_editor):
    periodic_task_remove(apps, task=TASK)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
