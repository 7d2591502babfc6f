"""Create django-celery-beat schedules from data migrations, once.

A later migrate never rewrites a schedule: after creation it belongs to the operators, who
edit it in the admin.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone


def periodic_task_ensure(
    apps: Any,
    *,
    task: str,
    name: str,
    description: str,
    every_seconds: int | None = None,
    crontab: dict[str, str] | None = None,
) -> None:
    """Create the PeriodicTask running `task` unless one runs it, or has its name, already
    (historical models only)."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if (
        PeriodicTask.objects.filter(task=task).exists()
        or PeriodicTask.objects.filter(name=name).exists()
    ):
        return
    schedule: dict[str, Any] = {}
    if every_seconds is not None:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        schedule["interval"], _ = IntervalSchedule.objects.get_or_create(
            every=every_seconds, period="seconds"
        )
    if crontab is not None:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        schedule["crontab"], _ = CrontabSchedule.objects.get_or_create(**crontab)
    PeriodicTask.objects.create(name=name, task=task, description=description, **schedule)
    periodic_tasks_changed(apps)


def periodic_task_remove(apps: Any, *, task: str) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=task).delete()
    periodic_tasks_changed(apps)


def periodic_task_rename(apps: Any, *, old: str, new: str) -> None:
    """Point the schedules of task `old` at task `new` (a task that moved module)."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(task=old).update(task=new):
        periodic_tasks_changed(apps)


def periodic_tasks_changed(apps: Any) -> None:
    """What PeriodicTasks.update_changed() does, for historical models: a running beat
    (DatabaseScheduler) re-reads its schedules only when this row's time moves, and the
    real model's save signals do not fire for historical models in a migration."""
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
