"""Ingest: validate a batch of events and store it durably, telling new events from
duplicates (same id, same content) and conflicts (same id, other content)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction

from aggregation.models import Metric
from aggregation.selectors import reporting_timezone
from aggregation.services.ledger import day_totals_ensure
from events.content import content_sha256, event_content
from events.models import BatchStatus, Conflict, IngestBatch, RejectedEvent
from events.services.enqueue import batch_enqueue_apply_once
from events.validation import (
    EventFieldError,
    ValidationContext,
    ValidEvent,
    echo_text,
    validate_event,
)

logger = logging.getLogger(__name__)


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


# --- The metric table, kept per process ---------------------------------------------------
# Validation needs each metric's name and id and which one is the default. The table is small
# and rarely changes, so each process keeps a copy instead of reading it on every request;
# the statement that stores a batch also reads the table's current version, and when it has
# moved the batch is rolled back and validated again against a fresh copy. A batch that
# names a metric the copy does not know, or that stores nothing, looks again before answering.

_METRICS_VERSION = (
    "(SELECT md5(json_agg(json_build_array(id, name, is_default) ORDER BY id)::text)"
    f" FROM {Metric._meta.db_table})"
)


@dataclass(frozen=True)
class _MetricTable:
    version: str | None
    ids: dict[str, int]
    default: str
    fresh: bool  # read during this call: no need to check it again


_metric_table: _MetricTable | None = None


def _metric_table_load() -> _MetricTable:
    global _metric_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, id, is_default, {_METRICS_VERSION} FROM {Metric._meta.db_table}"
        )
        rows = cursor.fetchall()
    _metric_table = _MetricTable(
        version=rows[0][3] if rows else None,
        ids={name: metric_id for name, metric_id, _, _ in rows},
        default=next((name for name, _, is_default, _ in rows if is_default), ""),
        fresh=False,
    )
    return dataclasses.replace(_metric_table, fresh=True)


def _metrics_version() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_METRICS_VERSION}")
        return cursor.fetchone()[0]


class _MetricsMoved(Exception):
    """The process's copy of the metric table is out of date: validate the batch again."""


def _validation_context(received_at: dt.datetime, metrics: _MetricTable) -> ValidationContext:
    return ValidationContext(
        metric_ids=metrics.ids,
        default_metric=metrics.default,
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


_STORED_CONTENTS = """
SELECT e.event_id, m.name, e.event_time, e.value, e.source, NULL::bytea
FROM events_event e JOIN aggregation_metric m ON m.id = e.metric_id
WHERE e.event_id = ANY(%b::text[])
UNION ALL
SELECT a.event_id, m.name, NULL, NULL, NULL, a.content_sha256
FROM events_archivedevent a
JOIN aggregation_daytotal d ON d.id = a.day_total_id
JOIN aggregation_metric m ON m.id = d.metric_id
WHERE a.event_id = ANY(%b::text[])
"""


def _stored_contents(event_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """The stored content of each id, from the events or, for an archived event, its
    metric and content hash (the archive file holds the rest)."""
    ids = list(event_ids)
    connection.ensure_connection()
    # One binary array parameter rather than one placeholder per id (see _events_insert).
    with psycopg.Cursor(connection.connection) as cursor:
        rows = cursor.execute(_STORED_CONTENTS, [ids, ids]).fetchall()
    return {
        event_id: (
            {"metric": metric, "archived": "true", "content_sha256": archived_sha.hex()}
            if archived_sha is not None
            else event_content(metric=metric, event_time=event_time, value=value, source=source)
        )
        for event_id, metric, event_time, value, source, archived_sha in rows
    }


def _same_content(event: ValidEvent, stored: dict[str, str]) -> bool:
    if stored.get("archived"):
        return content_sha256(event.content()).hex() == stored["content_sha256"]
    return stored == event.content()


def _classify(events: Sequence[ValidEvent], stored: dict[str, dict[str, str]]) -> _Classified:
    result = _Classified()
    for event in events:
        existing = stored.get(event.event_id)
        if existing is None:
            result.new.append(event)
        elif _same_content(event, existing):
            result.duplicates += 1
        else:
            result.conflicts.append((event, existing))
    return result


# The events whose day total did not exist when the batch came in (see _missed_store). An
# empty arrival array means "every event arrived at the receive time" (the common case) and
# costs nothing to send.
_INSERT_EVENTS = """
INSERT INTO events_event
    (event_id, metric_id, day, day_total_id, event_time, arrival_time, value, source, batch_id)
SELECT e.event_id, d.metric_id, d.day, e.day_total_id, e.event_time,
       coalesce(e.arrival_time, %b), e.value, e.source, %b
FROM unnest(%b::text[], %b::bigint[], %b::timestamptz[], %b::timestamptz[], %b::numeric[],
            %b::text[])
     AS e(event_id, day_total_id, event_time, arrival_time, value, source)
JOIN aggregation_daytotal d ON d.id = e.day_total_id
WHERE NOT EXISTS (SELECT 1 FROM events_archivedevent a WHERE a.event_id = e.event_id)
ORDER BY e.event_id
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def _events_insert(
    batch_id: int,
    events: Sequence[ValidEvent],
    day_total_id_of: dict[tuple[int, dt.date], int],
    received_at: dt.datetime,
) -> set[str]:
    """Insert new events in one statement; return the ids actually inserted.

    ON CONFLICT DO NOTHING: an id stored already, or inserted meanwhile by a concurrent
    request, is skipped here and classified afterwards; so is an archived id (NOT EXISTS:
    one primary-key probe per new row, nothing when the archive is empty of that id).
    """
    if not events:
        return set()
    arrivals = [e.arrival_time for e in events]
    if all(arrival == received_at for arrival in arrivals):
        arrivals = []
    params = [
        received_at,
        batch_id,
        [e.event_id for e in events],
        [day_total_id_of[(e.metric_id, e.day)] for e in events],
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
        cursor.execute(_INSERT_EVENTS, params)
        return {row[0] for row in cursor.fetchall()}


def _differing_fields(incoming: dict[str, str], stored: dict[str, str]) -> list[str]:
    if stored.get("archived"):
        # Only the hash of an archived event's content is kept in the database.
        differing = [k for k in ("metric",) if stored[k] != incoming[k]]
        return differing or ["content"]
    return sorted(k for k, v in incoming.items() if stored[k] != v)


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
                differing_fields=_differing_fields(event.content(), stored),
            )
            for event, stored in conflicts
        ]
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


# A batch in one statement, sent with its BEGIN in one round trip: the batch row (its counts
# as if every event is new, the common case), the events on days that have a total, the
# metric table's version, and the ids not inserted (stored already, archived, inserted
# meanwhile by a concurrent request, or on a day without a total yet), which _missed_store
# sorts out in the same transaction. Day totals are joined here rather than looked up
# first; the events' batch and day total ids therefore exist when they are inserted.
_INGEST_BATCH = f"""
WITH e AS (
    SELECT event_id, metric_id::bigint, day::date, event_time::timestamptz,
           arrival_time::timestamptz, value::numeric, source
    FROM ROWS FROM (
        json_array_elements_text(%s::json), json_array_elements_text(%s::json),
        json_array_elements_text(%s::json), json_array_elements_text(%s::json),
        json_array_elements_text(%s::json), json_array_elements_text(%s::json),
        json_array_elements_text(%s::json)
    ) AS e(event_id, metric_id, day, event_time, arrival_time, value, source)
), batch AS (
    INSERT INTO events_ingestbatch
        (received_at, channel, submitted_by_id, status, applied_at, accepted_count,
         duplicate_count, conflict_count, rejected_count, enqueue_count, last_enqueued_at,
         last_error, last_error_at)
    VALUES (%b, %b, %b, %b, NULL, %b, %b, %b, %b, %b, %b, '', NULL)
    RETURNING id
), inserted AS (
    INSERT INTO events_event
        (event_id, metric_id, day, day_total_id, event_time, arrival_time, value, source,
         batch_id)
    SELECT e.event_id, e.metric_id, e.day, d.id, e.event_time, coalesce(e.arrival_time, %b),
           e.value, e.source, (SELECT id FROM batch)
    FROM e JOIN aggregation_daytotal d ON d.metric_id = e.metric_id AND d.day = e.day
    WHERE NOT EXISTS (SELECT 1 FROM events_archivedevent a WHERE a.event_id = e.event_id)
    ORDER BY e.event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
)
SELECT (SELECT id FROM batch), {_METRICS_VERSION},
       ARRAY(SELECT event_id FROM e EXCEPT SELECT event_id FROM inserted)
"""


def _batch_store(
    *,
    new: Sequence[ValidEvent],
    received_at: dt.datetime,
    channel: str,
    submitted_by_id: int | None,
    counts: tuple[int, int, int],
    enqueue: bool,
) -> tuple[int, str | None, set[str]]:
    """Insert the batch row and its events; return the batch id, the metric table's version
    and the ids not inserted."""
    duplicates, conflicts, rejected = counts
    arrivals = [e.arrival_time for e in new]
    if all(arrival == received_at for arrival in arrivals):
        arrivals = []
    columns = [
        [e.event_id for e in new],
        [e.metric_id for e in new],
        [e.day for e in new],
        [e.event_time for e in new],
        arrivals,
        [str(e.value) for e in new],  # exact: validation quantized it to 6 places
        [e.source for e in new],
    ]
    params = [
        *(orjson.dumps(column).decode() for column in columns),
        received_at,
        channel,
        submitted_by_id,
        BatchStatus.RECEIVED.value,
        len(new),
        duplicates,
        conflicts,
        rejected,
        1 if enqueue else 0,
        received_at if enqueue else None,
        received_at,
    ]
    connection.ensure_connection()
    pgconn = connection.connection
    # Each column goes as one JSON array (orjson writes it in C; the times as RFC 3339 with
    # their offset and microseconds, the values as exact decimal strings): psycopg's binary
    # arrays, as in _events_insert, are built element by element in Python, and cost the
    # web process ~2.3 ms of CPU per 1,000 events against ~0.6 ms, for ~1 ms more of
    # PostgreSQL's (docs/scaling.md). A psycopg cursor on Django's connection and transaction;
    # the pipeline sends psycopg's BEGIN together with the statement instead of in a round
    # trip of its own.
    with pgconn.pipeline(), psycopg.Cursor(pgconn) as cursor:
        cursor.execute(_INGEST_BATCH, params)
        batch_id, version, missed = cursor.fetchone()
    return batch_id, version, set(missed)


def _missed_store(
    batch_id: int, missed: Sequence[ValidEvent], received_at: dt.datetime
) -> tuple[set[str], _Classified]:
    """The events the batch statement did not insert: tell the stored (or archived) ones
    apart as duplicates or conflicts, and insert the rest, whose day had no total yet, after
    creating it (only for a day that gets a new event, never for a duplicate). Returns the
    ids inserted here and the classification of the others."""
    checked = _classify(missed, _stored_contents(e.event_id for e in missed))
    inserted: set[str] = set()
    if checked.new:
        day_total_id_of = day_totals_ensure({(e.metric_id, e.day) for e in checked.new})
        inserted = _events_insert(batch_id, checked.new, day_total_id_of, received_at)
        raced = [e for e in checked.new if e.event_id not in inserted]
        if raced:
            late = _classify(raced, _stored_contents(e.event_id for e in raced))
            if late.new:
                # Neither inserted nor stored: never report such an event as handled.
                raise IntegrityError(f"{len(late.new)} events were not inserted and are not stored")
            checked.duplicates += late.duplicates
            checked.conflicts += late.conflicts
    return inserted, checked


DEADLOCK_ATTEMPTS = 3


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
    arguments = {
        "raw_events": raw_events,
        "received_at": received_at,
        "channel": channel,
        "submitted_by_id": submitted_by_id,
        "enqueue": enqueue,
    }
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return _ingest_current_metrics(arguments)
        except OperationalError as error:
            # Two batches that share new ids, one on a day with a total and one on a day
            # without, can lock each other's rows in opposite orders; PostgreSQL aborts one.
            # Nothing of it was stored, so it is simply run again (only when this is the
            # outermost transaction: inside another, the whole one has failed).
            deadlock = isinstance(error.__cause__, psycopg.errors.DeadlockDetected)
            if not deadlock or connection.in_atomic_block or attempt == DEADLOCK_ATTEMPTS:
                raise
            logger.warning("Ingest deadlocked with another batch; attempt %s again", attempt + 1)
    raise AssertionError("unreachable")


def _ingest_current_metrics(arguments: dict[str, Any]) -> IngestResult:
    metrics = _metric_table
    if metrics is not None:
        try:
            return _ingest(metrics=metrics, **arguments)
        except _MetricsMoved:
            pass
    return _ingest(metrics=_metric_table_load(), **arguments)


def _ingest(
    *,
    metrics: _MetricTable,
    raw_events: Sequence[Any],
    received_at: dt.datetime,
    channel: str,
    submitted_by_id: int | None,
    enqueue: bool,
) -> IngestResult:
    valid, errors, repeats = _validate_all(raw_events, _validation_context(received_at, metrics))
    if not metrics.fresh and any(error["field"] == "metric" for error in errors):
        raise _MetricsMoved  # perhaps a metric this copy does not know yet
    result = IngestResult(rejected=len(errors), errors=errors)
    if not valid:
        if not metrics.fresh and _metrics_version() != metrics.version:
            raise _MetricsMoved
        return result
    with transaction.atomic():
        batch_id, version, missed_ids = _batch_store(
            new=valid,
            received_at=received_at,
            channel=channel,
            submitted_by_id=submitted_by_id,
            counts=(repeats.duplicates, len(repeats.conflicts), len(errors)),
            enqueue=enqueue,
        )
        if version != metrics.version and not metrics.fresh:
            raise _MetricsMoved  # rolls the batch back
        accepted = valid
        duplicates, conflicts = repeats.duplicates, list(repeats.conflicts)
        if missed_ids:
            missed = [e for e in valid if e.event_id in missed_ids]
            inserted, checked = _missed_store(batch_id, missed, received_at)
            accepted = [e for e in valid if e.event_id not in missed_ids or e.event_id in inserted]
            duplicates += checked.duplicates
            conflicts += checked.conflicts
            IngestBatch.objects.filter(pk=batch_id).update(
                accepted_count=len(accepted),
                duplicate_count=duplicates,
                conflict_count=len(conflicts),
                status=BatchStatus.RECEIVED if accepted else BatchStatus.APPLIED,
                applied_at=None if accepted else received_at,
                enqueue_count=1 if enqueue and accepted else 0,
                last_enqueued_at=received_at if enqueue and accepted else None,
            )
        _conflicts_record(batch_id, received_at, conflicts)
        rejected_events_record(batch_id=batch_id, raw_events=raw_events, errors=errors)
        if enqueue and accepted:
            transaction.on_commit(lambda: batch_enqueue_apply_once(batch_id))
    result.batch_id = batch_id
    result.accepted = len(accepted)
    result.duplicates = duplicates
    result.conflicts = len(conflicts)
    result.days = sorted({(e.metric_name, e.day) for e in accepted})
    return result
