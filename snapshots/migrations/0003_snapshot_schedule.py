"""Create the snapshot schedule from SNAPSHOT_INTERVAL_SECONDS. Afterwards it is edited in
the admin (django-celery-beat), and a later migrate leaves it alone."""

from django.conf import settings
from django.db import migrations

from common.beat import periodic_task_ensure, periodic_task_remove

TASK = "snapshots.tasks.run_snapshots"


def create_schedule(apps, schema_editor):
    periodic_task_ensure(
        apps,
        task=TASK,
        name="Snapshot run",
        description="Copies every day total that changed into an immutable snapshot.",
        every_seconds=settings.SNAPSHOT_INTERVAL_SECONDS,
    )


def remove_schedule(apps, schema_editor):
    periodic_task_remove(apps, task=TASK)


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0002_snapshot_immutable_trigger"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
