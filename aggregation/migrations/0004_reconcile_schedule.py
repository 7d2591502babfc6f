"""Create the nightly reconcile schedule (03:30 UTC). Afterwards it is edited in the admin
(django-celery-beat: Periodic tasks), and a later migrate leaves it alone."""

from django.db import migrations

TASK = "aggregation.tasks.reconcile_nightly"


def create_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    if PeriodicTask.objects.filter(task=TASK).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.create(
        name="Nightly reconcile",
        task=TASK,
        crontab=crontab,
        description=(
            "Recomputes every day total from the stored events and the contributions, and "
            "checks the latest snapshots; the result is kept under Reconcile runs."
        ),
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("aggregation", "0003_reconcile_run"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
