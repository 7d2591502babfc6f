"""When the scheduled snapshot run comes next: read from django-celery-beat's tables,
which beat itself follows (so what the pages say is what will happen)."""

from __future__ import annotations

import datetime as dt

from django_celery_beat.models import PeriodicTask

SNAPSHOT_TASK = "snapshots.tasks.run_snapshots"


def snapshot_schedule_get() -> PeriodicTask | None:
    """The enabled interval schedule of the snapshot run, if there is one."""
    return (
        PeriodicTask.objects.select_related("interval")
        .filter(task=SNAPSHOT_TASK, enabled=True, interval__isnull=False)
        .order_by("pk")
        .first()
    )


def snapshot_interval(task: PeriodicTask) -> dt.timedelta:
    return dt.timedelta(**{task.interval.period: task.interval.every})


def snapshot_next_run(*, now: dt.datetime) -> dt.datetime | None:
    """The last scheduled run plus the interval; None when that cannot be told (no
    schedule, never run, or overdue): the pages then say "soon"."""
    task = snapshot_schedule_get()
    if task is None or task.last_run_at is None:
        return None
    next_run = task.last_run_at + snapshot_interval(task)
    return next_run if next_run >= now else None
