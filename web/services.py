"""Writes of the operations layer: each running worker's heartbeat, and the snapshot
interval set from the operations page."""

from __future__ import annotations

import datetime as dt

from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from snapshots.selectors.schedule import SNAPSHOT_TASK
from web.models import WorkerHeartbeat


def worker_heartbeat_record(
    *, hostname: str, pid: int, started_at: dt.datetime, now: dt.datetime
) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"pid": pid, "started_at": started_at, "last_seen": now}
    )


def worker_heartbeat_remove(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()


def snapshot_interval_set(*, minutes: int) -> PeriodicTask:
    """Run the scheduled snapshot every `minutes` minutes: point its beat schedule at a
    matching IntervalSchedule (created once, shared) and tell beat to reload its schedule."""
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=minutes, period=IntervalSchedule.MINUTES
    )
    task = PeriodicTask.objects.filter(task=SNAPSHOT_TASK).order_by("pk").first()
    if task is None:
        task = PeriodicTask(
            task=SNAPSHOT_TASK,
            name="Snapshot run",
            description="Copies every day total that changed into an immutable snapshot.",
        )
    task.interval, task.crontab, task.solar, task.clocked = interval, None, None, None
    task.save()  # PeriodicTask.save also marks the schedule changed for beat
    PeriodicTasks.update_changed()
    return task
