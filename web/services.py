"""Writes of the operations layer: each running worker's heartbeat."""

from __future__ import annotations

import datetime as dt

from web.models import WorkerHeartbeat


def worker_heartbeat_record(
    *, hostname: str, pid: int, started_at: dt.datetime, now: dt.datetime
) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"pid": pid, "started_at": started_at, "last_seen": now}
    )


def worker_heartbeat_remove(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()
