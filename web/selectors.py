"""Reads of the operations layer: which workers are up (a Celery ping, else the heartbeats
they write), and whether the broker answers."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from enum import StrEnum

from celery import current_app
from django.conf import settings

from web.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def workers_alive(*, now: dt.datetime) -> list[WorkerHeartbeat]:
    fresh_after = now - dt.timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=fresh_after).order_by("hostname"))


def broker_reachable(*, timeout: float = 1.0) -> bool:
    """Whether the broker answers now: one connection attempt, no retries. Opening a Redis
    channel sends a PING, so a server that accepts connections but does not answer counts as
    down; the transport's socket timeouts (settings) bound how long that takes."""
    try:
        with current_app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=0, interval_start=0, timeout=timeout)
    except Exception:
        logger.info("The broker did not answer the health probe", exc_info=True)
        return False
    return True


# --- Workers: who answers -------------------------------------------------------------------


class WorkerSource(StrEnum):
    PING = "ping"
    HEARTBEAT = "heartbeat"
    NONE = "none"


@dataclass(frozen=True)
class WorkersStatus:
    """Which workers are up, and which source said so: a Celery ping answered through the
    broker, or (when nothing answered, e.g. the broker is down or does not deliver
    broadcasts) the heartbeats the workers write to the database."""

    source: WorkerSource
    answered: list[str] = field(default_factory=list)
    heartbeats: list[WorkerHeartbeat] = field(default_factory=list)
    ping_error: str = ""
    ping_timeout: float = 0.0

    @property
    def unlisted(self) -> list[str]:
        """Workers that answered the ping but wrote no heartbeat (e.g. another version)."""
        beating = {heartbeat.hostname for heartbeat in self.heartbeats}
        return [hostname for hostname in self.answered if hostname not in beating]


def workers_ping(*, timeout: float, expected: int = 0) -> list[str]:
    """Hostnames of the workers that answer a Celery ping within `timeout` seconds. Returns
    as soon as `expected` workers answered (0: wait the whole timeout). Raises when the
    broker cannot be reached; the connection attempt itself is bounded by `timeout`."""
    with current_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        replies = current_app.control.ping(
            timeout=timeout, limit=expected or None, connection=connection
        )
    return sorted(hostname for reply in replies for hostname in reply)


def workers_status(*, now: dt.datetime, ping_timeout: float = 1.0) -> WorkersStatus:
    heartbeats = workers_alive(now=now)
    try:
        answered = workers_ping(timeout=ping_timeout, expected=len(heartbeats))
        error = ""
    except Exception as exc:  # any broker failure means "no answer": shown, and logged
        logger.warning("Celery ping failed: %s", exc)
        answered, error = [], f"{type(exc).__name__}: {exc}"
    if answered:
        source = WorkerSource.PING
    elif heartbeats:
        source = WorkerSource.HEARTBEAT
    else:
        source = WorkerSource.NONE
    return WorkersStatus(
        source=source,
        answered=answered,
        heartbeats=heartbeats,
        ping_error=error,
        ping_timeout=ping_timeout,
    )
