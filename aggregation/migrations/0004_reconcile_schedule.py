"""Create the nightly reconcile schedule (03:30 UTC). Afterwards it is edited in the admin
(django-celery-beat: Periodic tasks), and a later migrate leaves it alone."""

from django.db import migrations

from common.beat import periodic_task_ensure, periodic_task_remove

TASK = "aggregation.tasks.reconcile_nightly"


def create_schedule(apps, schema_editor):
    periodic_task_ensure(
        apps,
        task=TASK,
        name="Nightly reconcile",
        description=(
            "Recomputes every day total from the stored events and the contributions, and "
            "checks the latest snapshots; the result is kept under Reconcile runs."
        ),
        crontab={
            "minute": "30",
            "hour": "3",
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
        ("aggregation", "0003_reconcile_run"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
