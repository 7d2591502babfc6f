"""Reads about events: an event's status, the events behind a snapshot, and the backlog."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Min, Q, QuerySet, Sum

from events.models import (
    BatchStatus,
    Contribution,
    ContributionKind,
    Event,
    IngestBatch,
    QuarantineStatus,
    WorkerHeartbeat,
)
from snapagg_project.db import text_storable

logger = logging.getLogger(__name__)


class EventStatus:
    RECEIVED = "received"
    APPLIED = "applied"
    QUARANTINED = "quarantined"
    REJECTED_TOO_LATE = "rejected_too_late"


@dataclass(frozen=True)
class EventState:
    status: str
    late: bool | None
    snapshot: int | None


def event_get(*, event_id: str) -> Event | None:
    if not text_storable(event_id):
        return None
    return (
        Event.objects.select_related("metric", "batch", "day_total", "quarantine__contribution")
        .filter(event_id=event_id)
        .first()
    )


def _late_in(event: Event, contribution: Contribution) -> bool:
    # Within one contribution, events that arrived after the day ended were late exactly
    # when the day already had a snapshot, which is when the contribution counted any.
    return contribution.late_event_count > 0 and event.arrival_time >= event.day_total.day_end


def event_state(event: Event, contribution: Contribution | None = None) -> EventState:
    """Derive an event's status: events are written once and never updated."""
    quarantine = getattr(event, "quarantine", None)
    if quarantine is not None and quarantine.status == QuarantineStatus.HELD:
        return EventState(EventStatus.QUARANTINED, None, None)
    if quarantine is not None and quarantine.status == QuarantineStatus.REJECTED:
        return EventState(EventStatus.REJECTED_TOO_LATE, None, None)
    if quarantine is not None:
        contribution = quarantine.contribution
    elif event.batch.status == BatchStatus.RECEIVED:
        return EventState(EventStatus.RECEIVED, None, None)
    elif contribution is None:
        contribution = Contribution.objects.filter(
            batch_id=event.batch_id, day_total_id=event.day_total_id
        ).first()
    if contribution is None:  # cannot happen for an applied batch; say so rather than guess
        return EventState(EventStatus.RECEIVED, None, None)
    return EventState(
        EventStatus.APPLIED, _late_in(event, contribution), contribution.snapshot_sequence
    )


def snapshot_contributions(*, day_total_id: int, sequence: int) -> list[Contribution]:
    return list(Contribution.objects.filter(day_total_id=day_total_id, snapshot_sequence=sequence))


def contribution_events(contributions: list[Contribution]) -> QuerySet[Event]:
    """Exactly the events whose values make up these contributions."""
    if not contributions:
        return Event.objects.none()
    day_total_id = contributions[0].day_total_id
    batch_ids = [c.batch_id for c in contributions if c.kind == ContributionKind.BATCH]
    accepted_ids = [c.pk for c in contributions if c.kind == ContributionKind.ACCEPTED]
    from_batches = Q(day_total_id=day_total_id, batch_id__in=batch_ids, quarantine__isnull=True)
    from_quarantine = Q(quarantine__contribution_id__in=accepted_ids)
    return (
        Event.objects.filter(from_batches | from_quarantine)
        .select_related("metric", "batch", "day_total", "quarantine__contribution")
        .order_by("arrival_time", "pk")
    )


def contribution_for_event(event: Event, contributions: list[Contribution]) -> Contribution | None:
    quarantine = getattr(event, "quarantine", None)
    if quarantine is not None:
        return quarantine.contribution
    return next((c for c in contributions if c.batch_id == event.batch_id), None)


@dataclass(frozen=True)
class Backlog:
    events: int
    batches: int
    oldest_received_at: dt.datetime | None


def backlog_get() -> Backlog:
    unapplied = IngestBatch.objects.filter(status=BatchStatus.RECEIVED)
    figures = unapplied.aggregate(events=Sum("accepted_count"), oldest=Min("received_at"))
    return Backlog(
        events=figures["events"] or 0,
        batches=unapplied.count(),
        oldest_received_at=figures["oldest"],
    )


def workers_alive(*, now: dt.datetime) -> list[WorkerHeartbeat]:
    fresh_after = now - dt.timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=fresh_after).order_by("hostname"))


def broker_reachable(*, timeout: float = 1.0) -> bool:
    """Whether the broker answers now: one connection attempt, no retries. Opening a Redis
    channel sends a PING, so a server that accepts connections but does not answer counts as
    down; the transport's socket timeouts (settings) bound how long that takes."""
    from snapagg_project.celery import app

    try:
        with app.connection_for_write() as broker:
            broker.ensure_connection(max_retries=0, interval_start=0, timeout=timeout)
    except Exception:
        logger.info("The broker did not answer the health probe", exc_info=True)
        return False
    return True
