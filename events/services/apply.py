"""Apply: add batches' events to the day totals, exactly once.

The day totals the batches touch are locked through aggregation's ledger, which alone
writes them; then the batches' events, grouped by (batch, day, source) in SQL (events own
them), are appended to the ledger in one statement: no row per group crosses into Python,
so a batch spread over a thousand days costs the database a thousand contributions and
this process nothing more than a batch of one day.
`batch_apply` applies one batch; `batches_apply_coalesced` (the apply task's) applies the
batch it was asked for together with other waiting batches, in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import DataError, connection, transaction
from django.db import Error as DjangoDatabaseError

from aggregation.models import ContributionKind, TooLatePolicy, final_at_sql
from aggregation.services.ledger import (
    LedgerAppended,
    day_totals_lock_named,
    ledger_append_grouped,
)
from events.models import BatchStatus, IngestBatch, QuarantinedEvent

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

# The day totals the batches' events fall on (the index on (batch, day total) answers it);
# aggregation locks each once (day_totals_lock_named).
_BATCH_DAYS = "SELECT day_total_id FROM events_event WHERE batch_id = ANY(%s)"

# An event is too late if its day was already final when it arrived: the final snapshot
# taken, or the allowed lateness past. Under the quarantine policy it is held, not counted.
_TOO_LATE = f"(t.finalized OR e.arrival_time >= {final_at_sql('t', 'tm')})"
_HELD = f"(tm.too_late_policy = '{TooLatePolicy.QUARANTINE}' AND {_TOO_LATE})"

# The batches' counted events by (day, batch, source), one ledger row each: how many, their
# sum, how many late (the day already had a snapshot and they arrived after it ended) and
# too late (counted anyway: the restate policy). Run with the day totals locked, so their
# snapshot count and finality cannot move under it. A (day, batch, source) whose events are
# all held has no row. In day order (grouped by hash first: sorting every event by its source
# text cost more than the grouping).
_BATCH_CONTRIBUTIONS = f"""
SELECT * FROM (
    SELECT e.day_total_id, e.batch_id, '{ContributionKind.BATCH}' AS kind,
           sum(e.value) AS value, count(*) AS events,
           count(*) FILTER (WHERE t.snapshot_count > 0 AND e.arrival_time >= t.day_end) AS late,
           count(*) FILTER (WHERE {_TOO_LATE}) AS too_late,
           e.source
    FROM events_event e
    JOIN aggregation_daytotal t ON t.id = e.day_total_id
    JOIN aggregation_metric tm ON tm.id = t.metric_id
    WHERE e.batch_id = ANY(%s) AND NOT {_HELD}
    GROUP BY e.day_total_id, e.batch_id, e.source
) g
ORDER BY day_total_id, batch_id
"""

# The batches' events to hold in quarantine (too late, under the quarantine policy).
_BATCH_HELD = f"""
SELECT e.id, e.day_total_id
FROM events_event e
JOIN aggregation_daytotal t ON t.id = e.day_total_id
JOIN aggregation_metric tm ON tm.id = t.metric_id
WHERE e.batch_id = ANY(%s) AND {_HELD}
ORDER BY e.id
"""


def _batch_days_locked(batch_ids: list[int]) -> dict[str, int]:
    """Lock every day total the batches' events fall on, each once, in id order; how many
    were locked under each too-late policy."""
    return day_totals_lock_named(named_sql=_BATCH_DAYS, params=[batch_ids])


def _hold_too_late(batch_ids: list[int], *, policies: dict[str, int], now: dt.datetime) -> int:
    """Hold the batches' too-late events of quarantine-policy days (the day totals locked:
    `policies` says whether any is); how many were held."""
    if not policies.get(TooLatePolicy.QUARANTINE):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_HELD, [batch_ids])
        held = cursor.fetchall()
    QuarantinedEvent.objects.bulk_create(
        [
            QuarantinedEvent(event_id=pk, day_total_id=day_total_id, held_at=now)
            for pk, day_total_id in held
        ]
    )
    return len(held)


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


def _apply_claimed(batch_ids: list[int], now: dt.datetime) -> tuple[LedgerAppended, int]:
    """Add the claimed batches to the day totals: lock every day total they touch, hold
    their too-late events under the quarantine policy, then one ledger append of one
    contribution per (batch, day, source), grouped by the database."""
    policies = _batch_days_locked(batch_ids)
    held = _hold_too_late(batch_ids, policies=policies, now=now)
    appended = ledger_append_grouped(rows_sql=_BATCH_CONTRIBUTIONS, params=[batch_ids], now=now)
    return appended, held


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
        appended, held = _apply_claimed([batch_id], now)
    return BatchApplyResult(
        batch_id=batch_id,
        applied=True,
        events=appended.events,
        held=held,
        day_totals=appended.day_totals,
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
        appended, held = _apply_claimed(batch_ids, now)
    return BatchesApplyResult(
        batch_id=batch_id,
        applied=True,
        batch_ids=tuple(batch_ids),
        events=appended.events,
        held=held,
        day_totals=appended.day_totals,
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
