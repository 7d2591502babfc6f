"""Create the sweeper schedule that re-enqueues batches left unapplied."""

from django.conf import settings
from django.db import migrations

TASK = "events.tasks.sweep_unapplied_batches"


def create_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    if PeriodicTask.objects.filter(task=TASK).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.SWEEP_INTERVAL_SECONDS, period="seconds"
    )
    PeriodicTask.objects.create(
        name="Sweep unapplied batches",
        task=TASK,
        interval=interval,
        description=(
            "Re-enqueues ingest batches still unapplied after SWEEP_AFTER_SECONDS "
            "(a lost message, a dead worker, a broker outage)."
        ),
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
