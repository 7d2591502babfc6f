"""The snapshot job: copy every day total that changed (or turned final) into an immutable
snapshot, and stamp the contributions it covers so each change can be explained."""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal

from django.conf import settings
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
from alerts.models import AlertKind
from alerts.services.raising import AlertDraft, alert_condition_raise, alerts_raise
from common.db import advisory_xact_lock_try
from common.numbers import signed_decimal_str
from snapshots.models import (
    LATE_CORRECTION_REASONS,
    RunOutcome,
    Snapshot,
    SnapshotReason,
    SnapshotRun,
    SnapshotSource,
)
from snapshots.selectors.history import late_corrections_recent
from snapshots.services.anomaly import AnomalyRule, anomaly_score, history_ratios

logger = logging.getLogger(__name__)

SNAPSHOT_LOCK = "snapagg.snapshot_run"
RUN_FAILED_CONDITION = "snapshot_run_failed"
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
    _anomalies_score(snapshots, day_totals)
    Snapshot.objects.bulk_create(snapshots, batch_size=STAMP_CHUNK)
    if not snapshots:
        return 0
    _snapshot_sources_write(snapshots, pending)
    _alerts_raise(snapshots, now)
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


def _anomalies_score(snapshots: list[Snapshot], day_totals: dict[int, DayTotal]) -> None:
    """Score each late correction against its metric's past ones (before this run): one
    bounded query per metric with late corrections in this run, so O(changed days)."""
    late = [
        s
        for s in snapshots
        if s.reason in LATE_CORRECTION_REASONS
        and day_totals[s.day_total_id].metric.anomaly_detection
    ]
    if not late:
        return
    rule = AnomalyRule.from_settings()
    history = {
        metric_id: history_ratios(
            late_corrections_recent(metric_id=metric_id, limit=settings.ANOMALY_HISTORY_SIZE)
        )
        for metric_id in {s.metric_id for s in late}
    }
    for snapshot in late:
        snapshot.anomaly = anomaly_score(
            change=snapshot.change,
            value=snapshot.value,
            history=history[snapshot.metric_id],
            rule=rule,
        )


def _alerts_raise(snapshots: list[Snapshot], now: dt.datetime) -> None:
    """Rows only, in this transaction; the deliveries are published after the commit."""
    drafts = []
    for s in snapshots:
        where = {"metric_id": s.metric_id, "day": s.day, "sequence": s.sequence}
        name = f"{s.day_total.metric.name} on {s.day.isoformat()}"
        if s.reason == SnapshotReason.RESTATEMENT:
            detail = (
                f"{name} changed by {signed_decimal_str(s.change)} after it was final "
                f"(snapshot {s.sequence}, {s.too_late_events} too-late events)."
            )
            drafts.append(AlertDraft(kind=AlertKind.RESTATEMENT, detail=detail, **where))
        if s.anomaly:
            detail = f"{name}, snapshot {s.sequence}: {s.anomaly['detail']}"
            drafts.append(AlertDraft(kind=AlertKind.ANOMALY, detail=detail, **where))
    alerts_raise(drafts=drafts, now=now)


def _failure_alert(*, now: dt.datetime, exc: Exception) -> None:
    """One alert while the job keeps failing (cleared by the periodic check after a good
    run). Best effort: if the database is what failed, this cannot be written either."""
    try:
        alert_condition_raise(
            key=RUN_FAILED_CONDITION,
            kind=AlertKind.SNAPSHOT_RUN_FAILED,
            detail=f"The snapshot job failed: {type(exc).__name__}: {exc}",
            now=now,
        )
    except DatabaseError:
        logger.exception("Could not record the snapshot-run-failed alert")


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
        logger.info(
            "Snapshot run %s: %d days snapshotted",
            run.pk,
            run.days_snapshotted,
            extra={"run_id": run.pk},
        )
    except SnapshotRunBusy:
        _run_record_outside(
            trigger=trigger, now=now, outcome=RunOutcome.SKIPPED, elapsed=_elapsed_since(started)
        )
        raise
    except Exception as exc:
        logger.exception("Snapshot run failed", extra={"trigger": trigger})
        _run_failure_record(trigger=trigger, now=now, started=started, exc=exc)
        _failure_alert(now=now, exc=exc)
        raise
    return run
