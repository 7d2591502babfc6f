"""The snapshot job: copy every day total that changed (or turned final) into an immutable
snapshot, and stamp the contributions it covers so each change can be explained."""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal

from django.db import DatabaseError, transaction

from aggregation.calendar import DayStatus
from aggregation.models import DaySourceTotal, DayTotal
from aggregation.selectors import (
    LedgerPending,
    LedgerPendingSplit,
    day_source_totals,
    day_total_ids_due,
    ledger_pending,
)
from aggregation.services.ledger import SnapshotMark, day_totals_lock, day_totals_mark_snapshotted
from common.db import advisory_xact_lock_try
from snapshots.models import RunOutcome, Snapshot, SnapshotReason, SnapshotRun, SnapshotSource

logger = logging.getLogger(__name__)

SNAPSHOT_LOCK = "snapagg.snapshot_run"
STAMP_CHUNK = 500  # snapshots per INSERT statement


class SnapshotRunBusy(Exception):
    """Another snapshot run holds the lock."""


class SnapshotInvariantError(Exception):
    """A day total disagrees with the contributions that should explain it."""


def snapshot_reason(day_total: DayTotal, pending: LedgerPending) -> SnapshotReason:
    if day_total.snapshot_count == 0:
        return SnapshotReason.FIRST
    if pending.too_late:
        return SnapshotReason.RESTATEMENT
    if pending.late:
        return SnapshotReason.LATE_DATA
    if pending.contributions:
        return SnapshotReason.UPDATE
    return SnapshotReason.FINAL


def _snapshot_for(
    day_total: DayTotal, pending: LedgerPending, run: SnapshotRun, now: dt.datetime
) -> Snapshot | None:
    status = day_total.status_at(now)
    newly_final = status == DayStatus.FINAL and not day_total.finalized
    if not pending.contributions and not newly_final:
        return None
    change = day_total.value - day_total.snapshot_value
    if change != pending.value:
        raise SnapshotInvariantError(
            f"Day total {day_total} moved by {change} since its last snapshot but its "
            f"unsnapshotted contributions sum to {pending.value}; run `manage.py reconcile`."
        )
    return Snapshot(
        day_total=day_total,
        metric_id=day_total.metric_id,
        day=day_total.day,
        sequence=day_total.snapshot_count + 1,
        taken_at=now,
        run=run,
        value=day_total.value,
        event_count=day_total.event_count,
        late_event_count=day_total.late_event_count,
        change=change,
        change_events=pending.events,
        late_events=pending.late,
        too_late_events=pending.too_late,
        status=status,
        reason=snapshot_reason(day_total, pending),
    )


def _snapshots_write(run: SnapshotRun, now: dt.datetime) -> int:
    # Locking the due day totals stops applies to those days until we commit: the value we
    # copy and the contributions we stamp are then exactly consistent.
    day_totals = day_totals_lock(day_total_ids_due(now))
    pending = ledger_pending(list(day_totals))
    snapshots = [
        snapshot
        for day_total in day_totals.values()
        if (
            snapshot := _snapshot_for(
                day_total, pending.by_day.get(day_total.pk, LedgerPending()), run, now
            )
        )
    ]
    Snapshot.objects.bulk_create(snapshots, batch_size=STAMP_CHUNK)
    if not snapshots:
        return 0
    _snapshot_sources_write(snapshots, pending)
    marks = [
        SnapshotMark(
            day_total_id=s.day_total_id,
            sequence=s.sequence,
            value=s.value,
            final=s.status == DayStatus.FINAL,
            restatement=s.reason == SnapshotReason.RESTATEMENT,
        )
        for s in snapshots
    ]
    day_totals_mark_snapshotted(marks=marks, now=now)
    return len(snapshots)


def _snapshot_source(
    snapshot: Snapshot, source_total: DaySourceTotal, pending: LedgerPending
) -> SnapshotSource:
    return SnapshotSource(
        snapshot=snapshot,
        metric_id=snapshot.metric_id,
        day=snapshot.day,
        sequence=snapshot.sequence,
        source=source_total.source,
        value=source_total.value,
        event_count=source_total.event_count,
        late_event_count=source_total.late_event_count,
        change=pending.value,
        change_events=pending.events,
        late_events=pending.late,
    )


def _snapshot_sources_write(snapshots: list[Snapshot], pending: LedgerPendingSplit) -> None:
    """Every source of each snapshotted day, as its (locked) source total shows it, with the
    change its unstamped contributions make: O(snapshotted days x their sources)."""
    by_day = day_source_totals(s.day_total_id for s in snapshots)
    rows = [
        _snapshot_source(
            snapshot,
            source_total,
            pending.by_source.get((snapshot.day_total_id, source_total.source), LedgerPending()),
        )
        for snapshot in snapshots
        for source_total in by_day.get(snapshot.day_total_id, [])
    ]
    SnapshotSource.objects.bulk_create(rows, batch_size=STAMP_CHUNK * 4)


def _elapsed_since(started: float) -> dt.timedelta:
    return dt.timedelta(seconds=time.perf_counter() - started)


def _run_record_outside(
    *, trigger: str, now: dt.datetime, outcome: str, elapsed: dt.timedelta, error: str = ""
) -> SnapshotRun:
    return SnapshotRun.objects.create(
        trigger=trigger,
        started_at=now,
        finished_at=now + elapsed,
        duration_ms=Decimal(elapsed.total_seconds() * 1000).quantize(Decimal("0.001")),
        outcome=outcome,
        error=error,
    )


def _run_failure_record(*, trigger: str, now: dt.datetime, started: float, exc: Exception) -> None:
    """Log the failed run in the job log. If the database itself is what failed, the
    record cannot be written either: that is logged, and the original error propagates."""
    try:
        _run_record_outside(
            trigger=trigger,
            now=now,
            outcome=RunOutcome.FAILED,
            elapsed=_elapsed_since(started),
            error=f"{type(exc).__name__}: {exc}",
        )
    except DatabaseError:
        logger.exception("Could not record the failed snapshot run")


def snapshot_run_execute(*, now: dt.datetime, trigger: str) -> SnapshotRun:
    """Run the snapshot job once, as of `now`, under the single-run lock.

    Raises SnapshotRunBusy (after logging a skipped run) if another run holds the lock.
    """
    started = time.perf_counter()
    try:
        with transaction.atomic():
            if not advisory_xact_lock_try(SNAPSHOT_LOCK):
                raise SnapshotRunBusy
            run = SnapshotRun.objects.create(trigger=trigger, started_at=now, outcome=RunOutcome.OK)
            run.days_snapshotted = _snapshots_write(run, now)
            elapsed = _elapsed_since(started)
            run.finished_at = now + elapsed
            run.duration_ms = Decimal(elapsed.total_seconds() * 1000).quantize(Decimal("0.001"))
            run.save(update_fields=["days_snapshotted", "finished_at", "duration_ms"])
    except SnapshotRunBusy:
        _run_record_outside(
            trigger=trigger, now=now, outcome=RunOutcome.SKIPPED, elapsed=_elapsed_since(started)
        )
        raise
    except Exception as exc:
        logger.exception("Snapshot run failed")
        _run_failure_record(trigger=trigger, now=now, started=started, exc=exc)
        raise
    return run
