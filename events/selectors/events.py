"""Reads about events: an event's status, its batch, and the backlog of unapplied batches."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Min, QuerySet, Sum

from aggregation.models import Contribution
from common.db import text_storable
from events.models import BatchStatus, Conflict, Event, IngestBatch, QuarantineStatus

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
            batch_id=event.batch_id, day_total_id=event.day_total_id, source=event.source
        ).first()
    if contribution is None:  # cannot happen for an applied batch; say so rather than guess
        return EventState(EventStatus.RECEIVED, None, None)
    return applied_event_state(event, contribution)


def applied_event_state(event: Event, contribution: Contribution) -> EventState:
    """The state of an event counted by `contribution` (also for an archived event)."""
    return EventState(
        EventStatus.APPLIED, _late_in(event, contribution), contribution.snapshot_sequence
    )


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


# --- Batches ------------------------------------------------------------------------------


def batch_get(*, batch_id: int) -> IngestBatch | None:
    return IngestBatch.objects.select_related("submitted_by").filter(pk=batch_id).first()


def batch_days(*, batch_id: int) -> list[tuple[str, dt.date]]:
    """The (metric, day) pairs a batch's events fall on."""
    rows = (
        Event.objects.filter(batch_id=batch_id)
        .values_list("metric__name", "day")
        .distinct()
        .order_by("metric__name", "day")
    )
    return list(rows)


@dataclass(frozen=True)
class EventSums:
    value: Decimal = Decimal(0)
    count: int = 0


def counted_event_sums(day_total_ids: QuerySet) -> dict[int, EventSums]:
    """Sum and count of the counted events of each day total (for the reconcile)."""
    rows = (
        Event.objects.counted()
        .filter(day_total_id__in=day_total_ids)
        .values("day_total_id")
        .annotate(total=Sum("value"), count=Count("pk"))
        .order_by()
    )
    return {
        row["day_total_id"]: EventSums(row["total"] or Decimal(0), row["count"]) for row in rows
    }


def batch_days_published(*, batch_id: int) -> dict[tuple[str, dt.date], int | None]:
    """For each (metric, day) the batch added to, the sequence of the snapshot that
    published that change, or None while no snapshot has yet (one query)."""
    rows = Contribution.objects.filter(batch_id=batch_id).values_list(
        "day_total__metric__name", "day_total__day", "snapshot_sequence"
    )
    return {(metric, day): sequence for metric, day, sequence in rows}


def batch_stored_and_conflicting_ids(*, batch_id: int) -> tuple[set[str], set[str]]:
    """The event ids a batch stored and those it recorded as conflicts (two queries):
    what an upload needs to name its duplicates and conflicts by id."""
    stored = set(Event.objects.filter(batch_id=batch_id).values_list("event_id", flat=True))
    conflicting = set(Conflict.objects.filter(batch_id=batch_id).values_list("event_id", flat=True))
    return stored, conflicting
