"""Apply: add batches' events to the day totals, exactly once.

The batches' events are grouped by (batch, day, source) in SQL (events own them); the day
totals are locked and incremented through aggregation's ledger, which alone writes them.
`batch_apply` applies one batch; `batches_apply_coalesced` (the apply task's) applies the
batch it was asked for together with other waiting batches, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import DataError, connection, transaction
from django.db import Error as DjangoDatabaseError

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
class BatchesApplyResult:
    """What one coalescing apply did: `applied` says whether the batch asked for was
    applied by this call; `batch_ids` are all the batches it applied (that one first)."""

    batch_id: int
    applied: bool
    batch_ids: tuple[int, ...] = ()
    events: int = 0
    held: int = 0
    day_totals: int = 0


@dataclass(frozen=True)
class _DayGroup:
    """One batch's events of one source on one day, aggregated in SQL, with the state of
    the day total as read under its lock."""

    day_total_id: int
    batch_id: int
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


# Claiming the batch asked for: a conditional UPDATE, which waits for another transaction
# holding the row (a concurrent apply of it, or one that claimed it with others) and then
# re-reads its status, so a batch is claimed once.
_CLAIM = f"""
UPDATE events_ingestbatch SET status = '{BatchStatus.APPLIED}', applied_at = %s
WHERE id = %s AND status = '{BatchStatus.RECEIVED}'
RETURNING accepted_count
"""

# Claiming other waiting batches to apply with it, oldest first (found through the partial
# index of unapplied batches). SKIP LOCKED: a batch another transaction holds (an
# apply claiming it, the sweeper marking it) is left to that one, never waited for, so two
# coalescing applies never wait on each other here and take no batch twice; the lock order
# that matters for deadlocks is the day totals' (id order, below), taken after every batch
# lock. Of the batches locked, those whose running event count stays within the room left
# are claimed; any beyond stay locked but unclaimed until commit (their own task, claiming
# with _CLAIM, waits for that and then applies them).
_CLAIM_OTHERS = f"""
WITH locked AS (
    SELECT id, accepted_count, received_at FROM events_ingestbatch
    WHERE status = '{BatchStatus.RECEIVED}' AND id <> %s
    ORDER BY received_at, id
    LIMIT %s
    FOR NO KEY UPDATE SKIP LOCKED
), chosen AS (
    SELECT id FROM (
        SELECT id, sum(accepted_count) OVER (ORDER BY received_at, id) AS running FROM locked
    ) l
    WHERE running <= %s
)
UPDATE events_ingestbatch b SET status = '{BatchStatus.APPLIED}', applied_at = %s
FROM chosen WHERE b.id = chosen.id
RETURNING b.id
"""

# The batches' events by (day, batch, source). The final-at figure and the lock come from
# aggregation, which wraps this query so both cost no extra round trip
# (day_totals_lock_grouped).
_BATCH_GROUPS = f"""
SELECT e.day_total_id, e.batch_id, e.source, count(*) AS events, sum(e.value) AS total,
       count(*) FILTER (WHERE e.arrival_time >= t.day_end) AS after_day_end,
       count(*) FILTER (WHERE e.arrival_time >= {final_at_sql("t", "tm")}) AS past_final,
       coalesce(sum(e.value) FILTER (WHERE e.arrival_time >= {final_at_sql("t", "tm")}), 0)
           AS past_final_total
FROM events_event e
JOIN aggregation_daytotal t ON t.id = e.day_total_id
JOIN aggregation_metric tm ON tm.id = t.metric_id
WHERE e.batch_id = ANY(%s)
GROUP BY e.day_total_id, e.batch_id, e.source
"""


def _batch_groups_locked(batch_ids: list[int]) -> list[_DayGroup]:
    """The batches' events grouped by (day, batch, source), each day total locked for the
    increment, in id order (a day's several rows lock it once more each, harmlessly)."""
    rows = day_totals_lock_grouped(grouped_sql=_BATCH_GROUPS, params=[batch_ids])
    return [_DayGroup(*row) for row in rows]


def _hold_too_late(group: _DayGroup, *, everything: bool, now) -> None:
    events = Event.objects.filter(
        batch_id=group.batch_id, day_total_id=group.day_total_id, source=group.source
    )
    if not everything:
        events = events.filter(arrival_time__gte=group.final_at)
    QuarantinedEvent.objects.bulk_create(
        [
            QuarantinedEvent(event_id=pk, day_total_id=group.day_total_id, held_at=now)
            for pk in events.values_list("pk", flat=True)
        ]
    )


def _ledger_entry_for(group: _DayGroup, now: dt.datetime) -> tuple[LedgerEntry | None, int]:
    """What one batch adds to one day from one source; holds too-late events under the
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
        _hold_too_late(group, everything=everything_too_late, now=now)
        held = too_late
        events, total = events - too_late, total - too_late_total
        late = max(late - too_late, 0)
        too_late = 0
    if not events:
        return None, held
    entry = LedgerEntry(
        day_total_id=group.day_total_id,
        batch_id=group.batch_id,
        kind=ContributionKind.BATCH,
        value=total,
        event_count=events,
        late_event_count=late,
        too_late_event_count=too_late,
        source=group.source,
    )
    return entry, held


def _claim(batch_id: int, now: dt.datetime) -> int | None:
    """Claim the batch if it is still waiting; its event count, or None if it was not."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [now, batch_id])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _claim_others(
    batch_id: int, now: dt.datetime, *, max_batches: int, max_events: int
) -> list[int]:
    """Claim up to `max_batches` other waiting batches with at most `max_events` events in
    all, among those no other transaction holds."""
    if max_batches < 1 or max_events < 1:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_OTHERS, [batch_id, max_batches, max_events, now])
        return sorted(row[0] for row in cursor.fetchall())


def _apply_claimed(batch_ids: list[int], now: dt.datetime) -> tuple[list[LedgerEntry], int]:
    """Add the claimed batches to the day totals: one grouped query that locks every day
    total they touch, one contribution per (batch, day, source), one ledger append."""
    entries: list[LedgerEntry] = []
    held = 0
    for group in _batch_groups_locked(batch_ids):
        entry, group_held = _ledger_entry_for(group, now)
        held += group_held
        if entry is not None:
            entries.append(entry)
    ledger_append(entries=entries, now=now)
    return entries, held


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
        if _claim(batch_id, now) is None:
            return BatchApplyResult(batch_id=batch_id, applied=False)
        entries, held = _apply_claimed([batch_id], now)
    return BatchApplyResult(
        batch_id=batch_id,
        applied=True,
        events=sum(e.event_count for e in entries),
        held=held,
        day_totals=len({e.day_total_id for e in entries}),
    )


def _batches_apply_once(
    batch_id: int, now: dt.datetime, *, max_batches: int, max_events: int
) -> BatchesApplyResult:
    with transaction.atomic():
        own_events = _claim(batch_id, now)
        if own_events is None:
            return BatchesApplyResult(batch_id=batch_id, applied=False)
        others = _claim_others(
            batch_id, now, max_batches=max_batches - 1, max_events=max_events - own_events
        )
        batch_ids = [batch_id, *others]
        entries, held = _apply_claimed(batch_ids, now)
    return BatchesApplyResult(
        batch_id=batch_id,
        applied=True,
        batch_ids=tuple(batch_ids),
        events=sum(e.event_count for e in entries),
        held=held,
        day_totals=len({e.day_total_id for e in entries}),
    )


def batches_apply_coalesced(
    *, batch_id: int, now: dt.datetime, max_batches: int, max_events: int
) -> BatchesApplyResult:
    """Apply the batch asked for, exactly once as `batch_apply` does, and with it other
    waiting batches, in the same transaction: up to `max_batches` batches and `max_events`
    events in all (the batch asked for always, whatever its size).

    If it was already applied (a redelivery, or another apply took it along), nothing is
    done. The others are claimed with SKIP LOCKED, so two coalescing applies at once take
    disjoint sets; a crash rolls every claimed batch back to waiting. Their own tasks, when
    they run, find them applied and do nothing.

    If the database refuses the combined apply for its data (DataError: a day total that
    would overflow, say), the batch asked for is applied alone, so one batch that cannot be
    applied does not hold up the others; the error is raised only if it fails alone too.
    Any other error (a lost connection, a bug) is raised at once.
    """
    try:
        return _batches_apply_once(batch_id, now, max_batches=max_batches, max_events=max_events)
    except DataError as exc:
        if max_batches <= 1:
            raise
        logger.warning(
            "Applying batch %s with other waiting batches failed (%s: %s); applying it alone",
            batch_id,
            type(exc).__name__,
            exc,
            extra={"batch_id": batch_id},
        )
    return _batches_apply_once(batch_id, now, max_batches=1, max_events=max_events)


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
