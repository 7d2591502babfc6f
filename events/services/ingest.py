"""Ingest: validate a batch of events and store it durably, telling new events from
duplicates (same id, same content) and conflicts (same id, other content)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from aggregation.models import Metric
from aggregation.selectors import day_total_ids, reporting_timezone
from aggregation.services.ledger import day_totals_ensure
from events.content import content_sha256, event_content
from events.models import BatchStatus, Conflict, IngestBatch, RejectedEvent
from events.services.enqueue import batch_enqueue_apply
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


# at the receive time" (the common case) and costs nothing to send.
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


def _classify_before_insert(
    valid: Sequence[ValidEvent],
) -> tuple[_Classified, dict[tuple[int, dt.date], int]]:
    """Which events to insert, and the ids of their day totals.

    Events on days that already have a total (nearly all of them) go straight to the
    insert: ON CONFLICT tells which ids were stored already, and only those are looked up
    afterwards. Events on a day without a total are looked up first, so that a day total is
    created only for a day that gets a new event, never for a duplicate or a conflict.
    """
    ids = day_total_ids((e.metric_id, e.day) for e in valid)
    to_check = [e for e in valid if (e.metric_id, e.day) not in ids]
    if not to_check:
        return _Classified(new=list(valid)), ids
    checked = _classify(to_check, _stored_contents(e.event_id for e in to_check))
    missing = {(e.metric_id, e.day) for e in checked.new} - ids.keys()
    if missing:
        ids.update(day_totals_ensure(missing))
    stored = {e.event_id for e in to_check} - {e.event_id for e in checked.new}
    return (
        _Classified(
            new=[e for e in valid if e.event_id not in stored],
            duplicates=checked.duplicates,
            conflicts=checked.conflicts,
        ),
        ids,
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
        classified, day_total_id_of = _classify_before_insert(valid)
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
        inserted = _events_insert(batch.pk, classified.new, day_total_id_of, received_at)
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
