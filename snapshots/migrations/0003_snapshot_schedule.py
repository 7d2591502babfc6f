"""Create the snapshot schedule from SNAPSHOT_INTERVAL_SECONDS. Afterwards it is edited in
the admin (django-celery-beat), and a later migrate leaves it alone."""

from django.conf import settings
from django.db import migrations

TASK = "snapshots.tasks.run_snapshots"


def create_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    if PeriodicTask.objects.filter(task=TASK).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.SNAPSHOT_INTERVAL_SECONDS, period="seconds"
    )
    PeriodicTask.objects.create(
        name="Snapshot run",
        task=TASK,
        interval=interval,
        description="Copies every day total that changed into an immutable snapshot.",
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0002_snapshot_immutable_trigger"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
