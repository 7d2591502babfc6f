"""Reads about events: an event's status, the events behind a snapshot, and the backlog."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet, Sum

from aggregation.models import DayTotal
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


# --- What changed: the events behind a snapshot, grouped --------------------------------


class ChangeGroup(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    RESTATEMENT = "restatement"


# Matches no event, and stays valid SQL when negated or used as an aggregate filter.
_NOTHING = Q(pk__isnull=True)


def _restatement_filter(day_total: DayTotal, contributions: list[Contribution]) -> Q:
    """Events counted after their day was final. Apply marks a whole contribution too late
    when the day already had its final snapshot, else exactly the events that arrived at or
    after day end + allowed lateness; events accepted from quarantine are all too late."""
    whole, partial = [], []
    for contribution in contributions:
        if contribution.kind != ContributionKind.BATCH or not contribution.too_late_event_count:
            continue
        if contribution.too_late_event_count == contribution.event_count:
            whole.append(contribution.batch_id)
        else:
            partial.append(contribution.batch_id)
    accepted = [c.pk for c in contributions if c.kind == ContributionKind.ACCEPTED]
    restated = _NOTHING
    if whole:
        restated |= Q(batch_id__in=whole, quarantine__isnull=True)
    if partial:
        restated |= Q(
            batch_id__in=partial, quarantine__isnull=True, arrival_time__gte=day_total.final_at
        )
    if accepted:
        restated |= Q(quarantine__contribution_id__in=accepted)
    return restated


def change_group_filters(
    *, day_total: DayTotal, contributions: list[Contribution]
) -> dict[ChangeGroup, Q]:
    """Split the events of these contributions into on-time, late and restatement, with the
    same rules apply used to count them (so each group's count matches the snapshot)."""
    restated = _restatement_filter(day_total, contributions)
    late_batches = [
        c.batch_id
        for c in contributions
        if c.kind == ContributionKind.BATCH and c.late_event_count > c.too_late_event_count
    ]
    late = _NOTHING
    if late_batches:
        late = Q(batch_id__in=late_batches, arrival_time__gte=day_total.day_end) & ~restated
    return {
        ChangeGroup.ON_TIME: ~restated & ~late,
        ChangeGroup.LATE: late,
        ChangeGroup.RESTATEMENT: restated,
    }


@dataclass(frozen=True)
class ChangeGroupSum:
    group: ChangeGroup
    events: int
    value: Decimal


def change_group_sums(
    *, day_total: DayTotal, contributions: list[Contribution]
) -> list[ChangeGroupSum]:
    """Count and sum of each group, in one query."""
    filters = change_group_filters(day_total=day_total, contributions=contributions)
    aggregates = {}
    for group, condition in filters.items():
        aggregates[f"{group}_events"] = Count("pk", filter=condition)
        aggregates[f"{group}_value"] = Sum("value", filter=condition)
    figures = contribution_events(contributions).order_by().aggregate(**aggregates)
    return [
        ChangeGroupSum(
            group=group,
            events=figures[f"{group}_events"] or 0,
            value=figures[f"{group}_value"] or Decimal(0),
        )
        for group in filters
    ]


def change_group_events(
    *, day_total: DayTotal, contributions: list[Contribution], group: ChangeGroup
) -> QuerySet[Event]:
    """One group's events, oldest arrival first, with their lateness."""
    condition = change_group_filters(day_total=day_total, contributions=contributions)[group]
    return (
        contribution_events(contributions)
        .filter(condition)
        .annotate(
            arrived_after=ExpressionWrapper(
                F("arrival_time") - F("event_time"), output_field=DurationField()
            )
        )
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
    from snapagg_project.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        replies = app.control.ping(timeout=timeout, limit=expected or None, connection=connection)
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
