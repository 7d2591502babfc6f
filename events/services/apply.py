"""Apply: add one batch's events to the day totals, exactly once.

The batch's events are grouped by day in SQL (events own them); the day totals are locked
and incremented through aggregation's ledger, which alone writes them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import Error as DjangoDatabaseError
from django.db import transaction

from aggregation.models import ContributionKind, TooLatePolicy, final_at_sql
from aggregation.services.ledger import LedgerEntry, day_totals_lock_grouped, ledger_append
from events.models import BatchStatus, Event, IngestBatch, QuarantinedEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchApplyResult:
    batch_id: int
    applied: bool
    events: int = 0
    held: int = 0
    day_totals: int = 0


@dataclass(frozen=True)
class _DayGroup:
    """One batch's events of one source on one day, aggregated in SQL, with the state of
    the day total as read under its lock."""

    day_total_id: int
    source: str
    events: int
    total: Decimal
    after_day_end: int
    past_final: int
    past_final_total: Decimal
    snapshot_count: int
    finalized: bool
    too_late_policy: str
    final_at: dt.datetime


# A batch's events by (day, source). The final-at figure and the lock come from aggregation, which
# wraps this query so both cost no extra round trip (day_totals_lock_grouped).
_BATCH_GROUPS = f"""
SELECT e.day_total_id, e.source, count(*) AS events, sum(e.value) AS total,
       count(*) FILTER (WHERE e.arrival_time >= t.day_end) AS after_day_end,
       count(*) FILTER (WHERE e.arrival_time >= {final_at_sql("t", "tm")}) AS past_final,
       coalesce(sum(e.value) FILTER (WHERE e.arrival_time >= {final_at_sql("t", "tm")}), 0)
           AS past_final_total
FROM events_event e
JOIN aggregation_daytotal t ON t.id = e.day_total_id
JOIN aggregation_metric tm ON tm.id = t.metric_id
WHERE e.batch_id = %s
GROUP BY e.day_total_id, e.source
"""


def _batch_groups_locked(batch_id: int) -> list[_DayGroup]:
    """The batch's events grouped by (day, source), each day total locked for the
    increment (a day's several rows lock it once more each, harmlessly)."""
    rows = day_totals_lock_grouped(grouped_sql=_BATCH_GROUPS, params=[batch_id])
    return [_DayGroup(*row) for row in rows]


def _hold_too_late(batch_id: int, group: _DayGroup, *, everything: bool, now) -> None:
    events = Event.objects.filter(
        batch_id=batch_id, day_total_id=group.day_total_id, source=group.source
    )
    if not everything:
        events = events.filter(arrival_time__gte=group.final_at)
    QuarantinedEvent.objects.bulk_create(
        [
            QuarantinedEvent(event_id=pk, day_total_id=group.day_total_id, held_at=now)
            for pk in events.values_list("pk", flat=True)
        ]
    )


def _ledger_entry_for(
    batch_id: int, group: _DayGroup, now: dt.datetime
) -> tuple[LedgerEntry | None, int]:
    """What this batch adds to one day from one source; holds too-late events under the
    quarantine policy.

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
    entry = LedgerEntry(
        day_total_id=group.day_total_id,
        batch_id=batch_id,
        kind=ContributionKind.BATCH,
        value=total,
        event_count=events,
        late_event_count=late,
        too_late_event_count=too_late,
        source=group.source,
    )
    return entry, held


def batch_apply(*, batch_id: int, now: dt.datetime) -> BatchApplyResult:
    """Add one batch's events to the day totals, exactly once.

    Safe under redelivery, a second worker and crashes: the claim (a conditional UPDATE
    on the batch row) and every total increment commit in one transaction. A concurrent
    second apply blocks on the batch row lock, then re-reads status='applied' and matches
    nothing; a crash rolls back claim and increments together, leaving the batch to be
    applied again. The unique (batch, day_total, source) constraint on contributions backs
    this up.
    """
    with transaction.atomic():
        claimed = IngestBatch.objects.filter(pk=batch_id, status=BatchStatus.RECEIVED).update(
            status=BatchStatus.APPLIED, applied_at=now
        )
        if not claimed:
            return BatchApplyResult(batch_id=batch_id, applied=False)
        entries: list[LedgerEntry] = []
        held = 0
        for group in _batch_groups_locked(batch_id):
            entry, group_held = _ledger_entry_for(batch_id, group, now)
            held += group_held
            if entry is not None:
                entries.append(entry)
        ledger_append(entries=entries, now=now)
    return BatchApplyResult(
        batch_id=batch_id,
        applied=True,
        events=sum(e.event_count for e in entries),
        held=held,
        day_totals=len({e.day_total_id for e in entries}),
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
        logger.exception(
            "Could not record the apply error of batch %s", batch_id, extra={"batch_id": batch_id}
        )
