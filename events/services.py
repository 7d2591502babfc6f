"""Writes for ingestion: accept events durably, apply batches to day totals exactly once,
re-enqueue what was left behind, and decide on quarantined events."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from django.conf import settings
from django.db import Error as DjangoDatabaseError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum

from aggregation.calendar import day_end
from aggregation.models import DayTotal, Metric, TooLatePolicy
from aggregation.selectors import reporting_timezone
from events.models import (
    BatchStatus,
    Conflict,
    Contribution,
    ContributionKind,
    Event,
    IngestBatch,
    QuarantinedEvent,
    QuarantineStatus,
    RejectedEvent,
    WorkerHeartbeat,
)
from events.validation import (
    EventFieldError,
    ValidationContext,
    ValidEvent,
    echo_text,
    validate_event,
)
from snapagg_project.db import advisory_xact_lock_try, is_postgresql
from snapagg_project.numbers import sql_sum

logger = logging.getLogger(__name__)
ZERO = Decimal(0)


# --- Ingest -------------------------------------------------------------------------------


@dataclass
class IngestResult:
    batch_id: int | None = None
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    days: list[tuple[str, dt.date]] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
            "errors": self.errors,
        }


@dataclass
class _Classified:
    new: list[ValidEvent] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[tuple[ValidEvent, dict[str, str]]] = field(default_factory=list)


def _validation_context(received_at: dt.datetime) -> ValidationContext:
    metrics = list(Metric.objects.values_list("name", "id", "is_default"))
    default = next((name for name, _, is_default in metrics if is_default), None)
    return ValidationContext(
        metric_ids={name: metric_id for name, metric_id, _ in metrics},
        default_metric=default or "",
        tz=reporting_timezone(),
        received_at=received_at,
        max_future_skew=dt.timedelta(seconds=settings.INGEST_MAX_FUTURE_SKEW_SECONDS),
    )


def _error(index: int, raw: Any, field_name: str, detail: str) -> dict[str, Any]:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    return {
        "index": index,
        "event_id": echo_text(event_id),  # a lone surrogate would break the JSON answer
        "field": field_name,
        "detail": detail,
    }


def _validate_all(
    raw_events: Sequence[Any], context: ValidationContext
) -> tuple[list[ValidEvent], list[dict[str, Any]], _Classified]:
    """Validate every event; fold repeats of an id inside the batch into the first one."""
    first_seen: dict[str, ValidEvent] = {}
    errors: list[dict[str, Any]] = []
    repeats = _Classified()
    for index, raw in enumerate(raw_events):
        try:
            event = validate_event(raw, context)
        except EventFieldError as exc:
            errors.append(_error(index, raw, exc.field, exc.detail))
            continue
        earlier = first_seen.get(event.event_id)
        if earlier is None:
            first_seen[event.event_id] = event
        elif earlier.content() == event.content():
            repeats.duplicates += 1
        else:
            repeats.conflicts.append((event, earlier.content()))
    return list(first_seen.values()), errors, repeats


_PG_STORED_CONTENTS = """
SELECT e.event_id, m.name, e.event_time, e.value, e.source
FROM events_event e JOIN aggregation_metric m ON m.id = e.metric_id
WHERE e.event_id = ANY(%b::text[])
"""


def _stored_contents(event_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    ids = list(event_ids)
    if is_postgresql():
        connection.ensure_connection()
        # One binary array parameter rather than one placeholder per id (see _events_insert).
        with psycopg.Cursor(connection.connection) as cursor:
            rows = cursor.execute(_PG_STORED_CONTENTS, [ids]).fetchall()
    else:
        rows = Event.objects.filter(event_id__in=ids).values_list(
            "event_id", "metric__name", "event_time", "value", "source"
        )
    return {
        event_id: {
            "metric": metric,
            "event_time": event_time.astimezone(dt.UTC).isoformat(),
            "value": str(value),
            "source": source,
        }
        for event_id, metric, event_time, value, source in rows
    }


def _classify(events: Sequence[ValidEvent], stored: dict[str, dict[str, str]]) -> _Classified:
    result = _Classified()
    for event in events:
        existing = stored.get(event.event_id)
        if existing is None:
            result.new.append(event)
        elif existing == event.content():
            result.duplicates += 1
        else:
            result.conflicts.append((event, existing))
    return result


def _day_total_ids(pairs: Iterable[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], int]:
    """Ids of the existing day totals among `pairs`, by (metric_id, day).

    Plain SQL: it runs on every ingest, and building the equivalent ORM query cost more
    than running it.
    """
    wanted = set(pairs)
    if not wanted:
        return {}
    metric_ids = sorted({metric_id for metric_id, _ in wanted})
    days = sorted({day for _, day in wanted})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, metric_id, day FROM {DayTotal._meta.db_table} "
            f"WHERE metric_id IN ({', '.join(['%s'] * len(metric_ids))}) "
            f"AND day IN ({', '.join(['%s'] * len(days))})",
            [*metric_ids, *days],
        )
        rows = cursor.fetchall()
    return {(metric_id, day): pk for pk, metric_id, day in rows if (metric_id, day) in wanted}


def day_totals_ensure(pairs: Iterable[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], int]:
    """Create any missing day totals and return their ids by (metric_id, day).

    Rows are inserted in sorted order so two concurrent ingests that create the same new
    days wait on each other in the same order instead of deadlocking.
    """
    ordered = sorted(set(pairs))
    if not ordered:
        return {}
    tz = reporting_timezone()
    DayTotal.objects.bulk_create(
        [DayTotal(metric_id=m, day=d, day_end=day_end(d, tz)) for m, d in ordered],
        ignore_conflicts=True,
    )
    return _day_total_ids(ordered)


# ORDER BY event_id: two requests inserting the same new ids in different orders each
# waited for the other's uncommitted index entry (a deadlock, seen in the fault run's
# simultaneous rounds); in one order the second simply waits for the first.
# metric_id and day are copied from the day total rather than sent: fewer arrays to encode.
# unnest pads a shorter array with NULLs, so an empty arrival_time array means "all arrived
# at the receive time" (the common case) and costs nothing to send.
_PG_INSERT_EVENTS = """
INSERT INTO events_event
    (event_id, metric_id, day, day_total_id, event_time, arrival_time, value, source, batch_id)
SELECT e.event_id, d.metric_id, d.day, e.day_total_id, e.event_time,
       coalesce(e.arrival_time, %b), e.value, e.source, %b
FROM unnest(%b::text[], %b::bigint[], %b::timestamptz[], %b::timestamptz[], %b::numeric[],
            %b::text[])
     AS e(event_id, day_total_id, event_time, arrival_time, value, source)
JOIN aggregation_daytotal d ON d.id = e.day_total_id
ORDER BY e.event_id
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def _pg_events_insert(
    batch_id: int,
    events: Sequence[ValidEvent],
    day_total_ids: dict[tuple[int, dt.date], int],
    received_at: dt.datetime,
) -> set[str]:
    arrivals = [e.arrival_time for e in events]
    if all(arrival == received_at for arrival in arrivals):
        arrivals = []
    params = [
        received_at,
        batch_id,
        [e.event_id for e in events],
        [day_total_ids[(e.metric_id, e.day)] for e in events],
        [e.event_time for e in events],
        arrivals,
        [e.value for e in events],
        [e.source for e in events],
    ]
    connection.ensure_connection()
    # Django's cursors bind parameters client-side, as text: for 1,000-element arrays that
    # costs more than the insert itself. A psycopg server-binding cursor on the same
    # connection (and transaction) sends them as binary arrays instead.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(_PG_INSERT_EVENTS, params)
        return {row[0] for row in cursor.fetchall()}


def _events_insert(
    batch_id: int,
    events: Sequence[ValidEvent],
    day_total_ids: dict[tuple[int, dt.date], int],
    received_at: dt.datetime,
) -> set[str]:
    """Insert new events in one statement; return the ids actually inserted."""
    if not events:
        return set()
    if is_postgresql():
        # ON CONFLICT DO NOTHING: an id stored already, or inserted meanwhile by a
        # concurrent request, is skipped here and classified afterwards.
        return _pg_events_insert(batch_id, events, day_total_ids, received_at)
    # Elsewhere (SQLite) the IMMEDIATE transaction holds the write lock since it began,
    # so the existence check before this insert cannot be raced.
    Event.objects.bulk_create(
        [
            Event(
                event_id=e.event_id,
                metric_id=e.metric_id,
                day=e.day,
                day_total_id=day_total_ids[(e.metric_id, e.day)],
                event_time=e.event_time,
                arrival_time=e.arrival_time,
                value=e.value,
                source=e.source,
                batch_id=batch_id,
            )
            for e in events
        ],
        batch_size=500,
    )
    return {e.event_id for e in events}


def _conflicts_record(
    batch_id: int, received_at: dt.datetime, conflicts: Sequence[tuple[ValidEvent, dict]]
) -> None:
    Conflict.objects.bulk_create(
        [
            Conflict(
                event_id=event.event_id,
                batch_id=batch_id,
                received_at=received_at,
                stored=stored,
                incoming=event.content(),
                differing_fields=sorted(k for k, v in event.content().items() if stored[k] != v),
            )
            for event, stored in conflicts
        ]
    )


def _classify_before_insert(
    valid: Sequence[ValidEvent],
) -> tuple[_Classified, dict[tuple[int, dt.date], int]]:
    """Which events to insert, and the ids of their day totals.

    On PostgreSQL, events on days that already have a total (nearly all of them) go
    straight to the insert: ON CONFLICT tells which ids were stored already, and only those
    are looked up afterwards. Events on a day without a total are looked up first, so that
    a day total is created only for a day that gets a new event, never for a duplicate or
    a conflict. SQLite looks every event up first (its insert has no ON CONFLICT here).
    """
    day_total_ids = _day_total_ids((e.metric_id, e.day) for e in valid)
    to_check = valid
    if is_postgresql():
        to_check = [e for e in valid if (e.metric_id, e.day) not in day_total_ids]
    if not to_check:
        return _Classified(new=list(valid)), day_total_ids
    checked = _classify(to_check, _stored_contents(e.event_id for e in to_check))
    missing = {(e.metric_id, e.day) for e in checked.new} - day_total_ids.keys()
    if missing:
        day_total_ids.update(day_totals_ensure(missing))
    stored = {e.event_id for e in to_check} - {e.event_id for e in checked.new}
    return (
        _Classified(
            new=[e for e in valid if e.event_id not in stored],
            duplicates=checked.duplicates,
            conflicts=checked.conflicts,
        ),
        day_total_ids,
    )


REJECTED_PAYLOAD_MAX_CHARS = 2000


def _clean_text(text: str, max_length: int) -> str:
    # PostgreSQL text cannot hold NUL; the raw values here are whatever a client sent.
    return text.replace("\x00", "\ufffd")[:max_length]


def rejected_events_record(
    *, batch_id: int, raw_events: Sequence[Any], errors: Sequence[dict[str, Any]]
) -> None:
    """Keep the invalid events of an accepted request (one bulk insert, none if all valid)."""
    if not errors:
        return
    RejectedEvent.objects.bulk_create(
        [
            RejectedEvent(
                batch_id=batch_id,
                index=error["index"],
                event_id=_clean_text(error["event_id"] or "", 128),
                field=_clean_text(error["field"], 64),
                reason=_clean_text(error["detail"], 1000),
                raw_payload=_clean_text(
                    json.dumps(raw_events[error["index"]], default=str, ensure_ascii=True),
                    REJECTED_PAYLOAD_MAX_CHARS,
                ),
            )
            for error in errors
        ]
    )


def events_ingest(
    *,
    raw_events: Sequence[Any],
    received_at: dt.datetime,
    channel: str,
    submitted_by_id: int | None = None,
    enqueue: bool = True,
) -> IngestResult:
    """Validate and durably store a batch of events; enqueue its apply after commit.

    Valid events are kept even when others in the batch are invalid. Duplicates (same id,
    same content) are counted and dropped; conflicts (same id, other content) are recorded.
    """
    context = _validation_context(received_at)
    valid, errors, repeats = _validate_all(raw_events, context)
    result = IngestResult(rejected=len(errors), errors=errors)
    if not valid:
        return result
    with transaction.atomic():
        classified, day_total_ids = _classify_before_insert(valid)
        conflicts = repeats.conflicts + classified.conflicts
        batch = IngestBatch.objects.create(
            received_at=received_at,
            channel=channel,
            submitted_by_id=submitted_by_id,
            status=BatchStatus.RECEIVED if classified.new else BatchStatus.APPLIED,
            applied_at=None if classified.new else received_at,
            accepted_count=len(classified.new),
            duplicate_count=repeats.duplicates + classified.duplicates,
            conflict_count=len(conflicts),
            rejected_count=len(errors),
            enqueue_count=1 if enqueue and classified.new else 0,
            last_enqueued_at=received_at if enqueue and classified.new else None,
        )
        inserted = _events_insert(batch.pk, classified.new, day_total_ids, received_at)
        accepted = [e for e in classified.new if e.event_id in inserted]
        raced = [e for e in classified.new if e.event_id not in inserted]
        if raced:
            late_classified = _classify(raced, _stored_contents(e.event_id for e in raced))
            if late_classified.new:
                # Neither inserted nor stored: never report such an event as handled.
                raise IntegrityError(
                    f"{len(late_classified.new)} events were not inserted and are not stored"
                )
            classified.duplicates += late_classified.duplicates
            conflicts += late_classified.conflicts
            IngestBatch.objects.filter(pk=batch.pk).update(
                accepted_count=len(accepted),
                duplicate_count=repeats.duplicates + classified.duplicates,
                conflict_count=len(conflicts),
                status=BatchStatus.RECEIVED if accepted else BatchStatus.APPLIED,
                applied_at=None if accepted else received_at,
                enqueue_count=1 if enqueue and accepted else 0,
                last_enqueued_at=received_at if enqueue and accepted else None,
            )
        _conflicts_record(batch.pk, received_at, conflicts)
        rejected_events_record(batch_id=batch.pk, raw_events=raw_events, errors=errors)
        if enqueue and accepted:
            batch_id = batch.pk
            transaction.on_commit(lambda: batch_enqueue_apply(batch_id))
    result.batch_id = batch.pk
    result.accepted = len(accepted)
    result.duplicates = repeats.duplicates + classified.duplicates
    result.conflicts = len(conflicts)
    result.days = sorted({(e.metric_name, e.day) for e in accepted})
    return result


# After a failed publish, later publishes from this process are skipped for a while: while
# Redis is down or hung each attempt costs up to its socket timeouts, and every API answer
# would wait that long. Skipped batches are durable and the sweeper enqueues them.
_publish_paused_until = 0.0


def _no_retry_after_timeout(exc: BaseException, interval: float) -> None:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, RedisTimeoutError | TimeoutError):
        raise exc


def batch_enqueue_apply(batch_id: int) -> bool:
    """Publish the apply task. A failed publish is logged, not raised: the events are
    already durable and the sweeper re-enqueues the batch once it is overdue."""
    global _publish_paused_until
    from events.tasks import apply_batch

    if time.monotonic() < _publish_paused_until:
        logger.warning("Broker unavailable: batch %s left to the sweeper", batch_id)
        return False
    try:
        # One retry: after a Redis restart the pooled connection fails at once and a fresh
        # one succeeds. Not after a timeout (a hung Redis): that would only double the wait.
        apply_batch.apply_async(
            args=[batch_id],
            retry=True,
            retry_policy={
                "max_retries": 1,
                "interval_start": 0,
                "interval_step": 0.2,
                "errback": _no_retry_after_timeout,
            },
        )
    except Exception:
        _publish_paused_until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE_SECONDS
        logger.exception("Could not enqueue batch %s; the sweeper will retry it", batch_id)
        return False
    return True


# --- Apply --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchApplyResult:
    batch_id: int
    applied: bool
    events: int = 0
    held: int = 0
    day_totals: int = 0


@dataclass(frozen=True)
class _DayGroup:
    """One batch's events on one day, aggregated in SQL, with the state of the day total
    as read under its lock."""

    day_total_id: int
    events: int
    total: Decimal
    after_day_end: int
    past_final: int
    past_final_total: Decimal
    snapshot_count: int
    finalized: bool
    too_late_policy: str
    final_at: dt.datetime


# One round trip for the aggregates and the locks. The locks are taken in id order (ORDER
# BY runs before the row locks), like day_totals_lock, so lockers cannot deadlock.
_PG_BATCH_GROUPS_LOCKED = """
SELECT d.id, g.events, g.total, g.after_day_end, g.past_final, g.past_final_total,
       d.snapshot_count, d.finalized, m.too_late_policy, d.day_end + m.allowed_lateness
FROM (
    SELECT e.day_total_id, count(*) AS events, sum(e.value) AS total,
           count(*) FILTER (WHERE e.arrival_time >= t.day_end) AS after_day_end,
           count(*) FILTER (WHERE e.arrival_time >= t.day_end + tm.allowed_lateness)
               AS past_final,
           coalesce(sum(e.value) FILTER (WHERE e.arrival_time >= t.day_end + tm.allowed_lateness),
                    0) AS past_final_total
    FROM events_event e
    JOIN aggregation_daytotal t ON t.id = e.day_total_id
    JOIN aggregation_metric tm ON tm.id = t.metric_id
    WHERE e.batch_id = %s
    GROUP BY e.day_total_id
) g
JOIN aggregation_daytotal d ON d.id = g.day_total_id
JOIN aggregation_metric m ON m.id = d.metric_id
ORDER BY d.id
FOR NO KEY UPDATE OF d
"""


def _batch_groups_locked(batch_id: int) -> list[_DayGroup]:
    """The batch's events grouped by day, each day total locked for the increment."""
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(_PG_BATCH_GROUPS_LOCKED, [batch_id])
            return [_DayGroup(*row) for row in cursor.fetchall()]
    final_at = F("day_total__day_end") + F("metric__allowed_lateness")
    rows = (
        Event.objects.filter(batch_id=batch_id)
        .values("day_total_id")
        .annotate(
            events=Count("pk"),
            total=Sum("value"),
            after_day_end=Count("pk", filter=Q(arrival_time__gte=F("day_total__day_end"))),
            past_final=Count("pk", filter=Q(arrival_time__gte=final_at)),
            past_final_total=Sum("value", filter=Q(arrival_time__gte=final_at)),
        )
        .order_by("day_total_id")
    )
    day_totals = day_totals_lock(row["day_total_id"] for row in rows)
    return [
        _DayGroup(
            day_total_id=row["day_total_id"],
            events=row["events"],
            total=sql_sum(row["total"]),
            after_day_end=row["after_day_end"],
            past_final=row["past_final"],
            past_final_total=sql_sum(row["past_final_total"]),
            snapshot_count=day_totals[row["day_total_id"]].snapshot_count,
            finalized=day_totals[row["day_total_id"]].finalized,
            too_late_policy=day_totals[row["day_total_id"]].metric.too_late_policy,
            final_at=day_totals[row["day_total_id"]].final_at,
        )
        for row in rows
    ]


def day_totals_lock(ids: Iterable[int]) -> dict[int, DayTotal]:
    """Lock day totals in id order (a fixed order, so concurrent lockers cannot deadlock).

    FOR NO KEY UPDATE, not FOR UPDATE: an ingest inserting events checks its foreign key
    to the day total with FOR KEY SHARE, which FOR UPDATE would block (and, with the checks
    running in event order, deadlock against this id order). The totals' own writers still
    exclude each other.
    """
    locked = (
        DayTotal.objects.select_for_update(of=("self",), no_key=True)
        .select_related("metric")
        .filter(pk__in=sorted(set(ids)))
        .order_by("pk")
    )
    return {day_total.pk: day_total for day_total in locked}


def _hold_too_late(batch_id: int, group: _DayGroup, *, everything: bool, now) -> None:
    events = Event.objects.filter(batch_id=batch_id, day_total_id=group.day_total_id)
    if not everything:
        events = events.filter(arrival_time__gte=group.final_at)
    QuarantinedEvent.objects.bulk_create(
        [
            QuarantinedEvent(event_id=pk, day_total_id=group.day_total_id, held_at=now)
            for pk in events.values_list("pk", flat=True)
        ]
    )


def _contribution_for(
    batch_id: int, group: _DayGroup, now: dt.datetime
) -> tuple[Contribution | None, int]:
    """What this batch adds to one day; holds too-late events under quarantine policy.

    An event is late if its day already had a snapshot and it arrived after the day ended;
    too late if the day was already final (final snapshot taken, or allowed lateness past).
    """
    everything_too_late = group.finalized
    too_late = group.events if everything_too_late else group.past_final
    too_late_total = group.total if everything_too_late else group.past_final_total
    late = group.after_day_end if group.snapshot_count else 0
    held = 0
    events, total = group.events, group.total
    if too_late and group.too_late_policy == TooLatePolicy.QUARANTINE:
        _hold_too_late(batch_id, group, everything=everything_too_late, now=now)
        held = too_late
        events, total = events - too_late, total - too_late_total
        late = max(late - too_late, 0)
        too_late = 0
    if not events:
        return None, held
    contribution = Contribution(
        day_total_id=group.day_total_id,
        batch_id=batch_id,
        kind=ContributionKind.BATCH,
        value=total,
        event_count=events,
        late_event_count=late,
        too_late_event_count=too_late,
        applied_at=now,
    )
    return contribution, held


def _day_total_add(day_total: DayTotal, contribution: Contribution, now: dt.datetime) -> None:
    day_total.value += contribution.value
    day_total.event_count += contribution.event_count
    day_total.late_event_count += contribution.late_event_count
    day_total.too_late_event_count += contribution.too_late_event_count
    day_total.revision += 1
    day_total.last_applied_at = now


DAY_TOTAL_APPLY_FIELDS = [
    "value",
    "event_count",
    "late_event_count",
    "too_late_event_count",
    "revision",
    "last_applied_at",
]


# Appending the contributions and adding them to their (already locked) totals is one
# statement on PostgreSQL.
_PG_CONTRIBUTIONS_ADD = """
WITH added AS (
    INSERT INTO events_contribution
        (day_total_id, batch_id, kind, value, event_count, late_event_count,
         too_late_event_count, applied_at)
    SELECT c.day_total_id, %s, %s, c.value, c.events, c.late, c.too_late, %s
    FROM unnest(%s::bigint[], %s::numeric[], %s::integer[], %s::integer[], %s::integer[])
         AS c(day_total_id, value, events, late, too_late)
    RETURNING day_total_id, value, event_count, late_event_count, too_late_event_count
)
UPDATE aggregation_daytotal d
SET value = d.value + a.value,
    event_count = d.event_count + a.event_count,
    late_event_count = d.late_event_count + a.late_event_count,
    too_late_event_count = d.too_late_event_count + a.too_late_event_count,
    revision = d.revision + 1,
    last_applied_at = %s
FROM added a
WHERE d.id = a.day_total_id
"""


def _contributions_add(batch_id: int, contributions: list[Contribution], now: dt.datetime) -> None:
    if not contributions:
        return
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                _PG_CONTRIBUTIONS_ADD,
                [
                    batch_id,
                    ContributionKind.BATCH.value,
                    now,
                    [c.day_total_id for c in contributions],
                    [c.value for c in contributions],
                    [c.event_count for c in contributions],
                    [c.late_event_count for c in contributions],
                    [c.too_late_event_count for c in contributions],
                    now,
                ],
            )
        return
    Contribution.objects.bulk_create(contributions)
    # Added in Python, as decimals: SQLite would add the stored values as floats. (The rows
    # are already locked: SQLite's write lock is held since the transaction began.)
    day_totals = DayTotal.objects.in_bulk([c.day_total_id for c in contributions])
    for contribution in contributions:
        _day_total_add(day_totals[contribution.day_total_id], contribution, now)
    DayTotal.objects.bulk_update(list(day_totals.values()), DAY_TOTAL_APPLY_FIELDS)


def batch_apply(*, batch_id: int, now: dt.datetime) -> BatchApplyResult:
    """Add one batch's events to the day totals, exactly once.

    Safe under redelivery, a second worker and crashes: the claim (a conditional UPDATE
    on the batch row) and every total increment commit in one transaction. A concurrent
    second apply blocks on the batch row lock, then re-reads status='applied' and matches
    nothing; a crash rolls back claim and increments together, leaving the batch to be
    applied again. The unique (batch, day_total) constraint on contributions backs this up.
    """
    with transaction.atomic():
        claimed = IngestBatch.objects.filter(pk=batch_id, status=BatchStatus.RECEIVED).update(
            status=BatchStatus.APPLIED, applied_at=now
        )
        if not claimed:
            return BatchApplyResult(batch_id=batch_id, applied=False)
        contributions: list[Contribution] = []
        held = 0
        for group in _batch_groups_locked(batch_id):
            contribution, group_held = _contribution_for(batch_id, group, now)
            held += group_held
            if contribution is not None:
                contributions.append(contribution)
        _contributions_add(batch_id, contributions, now)
    return BatchApplyResult(
        batch_id=batch_id,
        applied=True,
        events=sum(c.event_count for c in contributions),
        held=held,
        day_totals=len(contributions),
    )


def batch_apply_failure_record(*, batch_id: int, error: BaseException, now: dt.datetime) -> None:
    """Note on the batch why its apply failed, for the admin's list of failed batches.

    Called after the apply transaction has rolled back, so this is a transaction of its own.
    If the database is what failed, this cannot be written either: that is logged, and the
    caller's error still propagates (the sweeper re-enqueues the batch later).
    """
    try:
        IngestBatch.objects.filter(pk=batch_id).update(
            last_error=f"{type(error).__name__}: {error}"[:2000], last_error_at=now
        )
    except DjangoDatabaseError:
        logger.exception("Could not record the apply error of batch %s", batch_id)


# --- Sweeper ------------------------------------------------------------------------------

SWEEP_LOCK = "snapagg.sweep_unapplied_batches"
SWEEP_LIMIT = 1000


def batches_requeue_stale(
    *,
    now: dt.datetime,
    older_than: dt.timedelta,
    enqueue: Callable[[int], bool] = batch_enqueue_apply,
) -> list[int]:
    """Re-enqueue batches still unapplied `older_than` after receipt and after their last
    enqueue (a lost message, a worker killed before acking, a broker outage)."""
    cutoff = now - older_than
    with transaction.atomic():
        if not advisory_xact_lock_try(SWEEP_LOCK):
            return []
        stale = list(
            IngestBatch.objects.filter(status=BatchStatus.RECEIVED, received_at__lt=cutoff)
            .filter(Q(last_enqueued_at__isnull=True) | Q(last_enqueued_at__lt=cutoff))
            .order_by("received_at")
            .values_list("pk", flat=True)[:SWEEP_LIMIT]
        )
        if not stale:
            return []
        IngestBatch.objects.filter(pk__in=stale).update(
            enqueue_count=F("enqueue_count") + 1, last_enqueued_at=now
        )
        transaction.on_commit(lambda: [enqueue(batch_id) for batch_id in stale])
    logger.warning("Re-enqueued %d batches left unapplied", len(stale))
    return stale


# --- Quarantine decisions -------------------------------------------------------------------


def _held_locked(event_pks: Sequence[int]) -> list[QuarantinedEvent]:
    return list(
        QuarantinedEvent.objects.select_for_update(of=("self",))
        .select_related("event")
        .filter(pk__in=event_pks, status=QuarantineStatus.HELD)
        .order_by("pk")
    )


def quarantine_accept(
    *, event_pks: Sequence[int], decided_by_id: int | None, reason: str, now: dt.datetime
) -> int:
    """Count held events after all, as a restatement of their days. Returns how many."""
    with transaction.atomic():
        held = _held_locked(event_pks)
        by_day: dict[int, list[QuarantinedEvent]] = defaultdict(list)
        for entry in held:
            by_day[entry.day_total_id].append(entry)
        day_totals = day_totals_lock(by_day)
        for day_total_id, entries in by_day.items():
            day_total = day_totals[day_total_id]
            late = sum(
                1
                for entry in entries
                if day_total.snapshot_count and entry.event.arrival_time >= day_total.day_end
            )
            contribution = Contribution.objects.create(
                day_total_id=day_total_id,
                kind=ContributionKind.ACCEPTED,
                value=sum((entry.event.value for entry in entries), ZERO),
                event_count=len(entries),
                late_event_count=late,
                too_late_event_count=len(entries),
                applied_at=now,
            )
            _day_total_add(day_total, contribution, now)
            QuarantinedEvent.objects.filter(pk__in=[entry.pk for entry in entries]).update(
                status=QuarantineStatus.ACCEPTED,
                decided_at=now,
                decided_by_id=decided_by_id,
                decision_reason=reason,
                contribution=contribution,
            )
        DayTotal.objects.bulk_update(list(day_totals.values()), DAY_TOTAL_APPLY_FIELDS)
    return len(held)


def quarantine_reject(
    *, event_pks: Sequence[int], decided_by_id: int | None, reason: str, now: dt.datetime
) -> int:
    """Keep held events on record, uncounted. Returns how many were rejected."""
    with transaction.atomic():
        held = _held_locked(event_pks)
        QuarantinedEvent.objects.filter(pk__in=[entry.pk for entry in held]).update(
            status=QuarantineStatus.REJECTED,
            decided_at=now,
            decided_by_id=decided_by_id,
            decision_reason=reason,
        )
    return len(held)


# --- Worker heartbeat ---------------------------------------------------------------------


def worker_heartbeat_record(
    *, hostname: str, pid: int, started_at: dt.datetime, now: dt.datetime
) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"pid": pid, "started_at": started_at, "last_seen": now}
    )


def worker_heartbeat_remove(*, hostname: str) -> None:
    WorkerHeartbeat.objects.filter(hostname=hostname).delete()
