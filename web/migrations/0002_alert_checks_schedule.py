"""Create the alert-check schedule from ALERT_CHECK_INTERVAL_SECONDS. Afterwards it is
edited in the admin (django-celery-beat), and a later migrate leaves it alone."""

from django.conf import settings
from django.db import migrations

from common.beat import periodic_task_ensure, periodic_task_remove

TASK = "web.tasks.check_alerts"


def create_schedule(apps, schema_editor):
    periodic_task_ensure(
        apps,
        task=TASK,
        name="Alert checks",
        description=(
            "Raises (once) and clears alerts for a stale backlog, overdue snapshot runs and a "
            "failing snapshot job; republishes alert deliveries that were never sent."
        ),
        every_seconds=settings.ALERT_CHECK_INTERVAL_SECONDS,
    )


def remove_schedule(apps, schema_editor):
    periodic_task_remove(apps, task=TASK)


class Migration(migrations.Migration):
    dependencies = [
        ("web", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
