"""Create the nightly archive schedule (04:15 UTC, after the 03:30 reconcile). Afterwards
it is edited in the admin (django-celery-beat: Periodic tasks); a later migrate leaves it."""

from django.db import migrations

from common.beat import periodic_task_ensure, periodic_task_remove

TASK = "archive.tasks.archive_nightly"


def create_schedule(apps, schema_editor):
    periodic_task_ensure(
        apps,
        task=TASK,
        name="Nightly archive of raw events",
        description=(
            "Moves the raw events of final, snapshotted days older than their metric's raw "
            "retention to verified archive files; the result is kept under Archive runs."
        ),
        crontab={
            "minute": "15",
            "hour": "4",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "UTC",
        },
    )


def remove_schedule(apps, schema_editor):
    periodic_task_remove(apps, task=TASK)


class Migration(migrations.Migration):
    dependencies = [
        ("archive", "0001_archive_runs_and_manifests"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
