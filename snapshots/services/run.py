"""The snapshot job: copy every day total that changed (or turned final) into an immutable
snapshot, and stamp the contributions it covers so each change can be explained."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection, transaction

from aggregation.calendar import DayStatus, day_status
from aggregation.selectors import LedgerPending, PendingSource, ledger_pending_sources
from aggregation.services.ledger import (
    DueDayTotal,
    SnapshotMark,
    day_totals_lock_due,
    day_totals_mark_snapshotted,
)
from alerts.models import AlertKind
from alerts.services.raising import AlertDraft, alert_condition_raise, alerts_raise
from common.db import advisory_xact_lock_try, execute_prepared
from common.numbers import signed_decimal_str
from snapshots.models import (
    LATE_CORRECTION_REASONS,
    RunOutcome,
    SnapshotReason,
    SnapshotRun,
)
from snapshots.selectors.history import late_corrections_recent
from snapshots.services.anomaly import AnomalyRule, anomaly_score, history_ratios

logger = logging.getLogger(__name__)

SNAPSHOT_LOCK = "snapagg.snapshot_run"
RUN_FAILED_CONDITION = "snapshot_run_failed"


class SnapshotRunBusy(Exception):
    """Another snapshot run holds the lock."""


class SnapshotInvariantError(Exception):
    """A day total disagrees with the contributions that should explain it."""


@dataclass(slots=True)
class _NewSnapshot:
    """A snapshot about to be written (the columns of Snapshot, without ids)."""

    day_total_id: int
    metric_id: int
    metric_name: str
    day: dt.date
    sequence: int
    value: Decimal
    event_count: int
    late_event_count: int
    change: Decimal
    change_events: int
    late_events: int
    too_late_events: int
    status: DayStatus
    reason: SnapshotReason
    anomaly: dict | None = None


def snapshot_reason(*, snapshot_count: int, pending: LedgerPending) -> SnapshotReason:
    if snapshot_count == 0:
        return SnapshotReason.FIRST
    if pending.too_late:
        return SnapshotReason.RESTATEMENT
    if pending.late:
        return SnapshotReason.LATE_DATA
    if pending.contributions:
        return SnapshotReason.UPDATE
    return SnapshotReason.FINAL


def _snapshot_for(
    day_total: DueDayTotal, pending: LedgerPending, now: dt.datetime
) -> _NewSnapshot | None:
    status = day_status(
        day_end=day_total.day_end, allowed_lateness=day_total.allowed_lateness, now=now
    )
    newly_final = status == DayStatus.FINAL and not day_total.finalized
    if not pending.contributions and not newly_final:
        return None
    change = day_total.value - day_total.snapshot_value
    if change != pending.value:
        raise SnapshotInvariantError(
            f"Day total {day_total.metric_name} on {day_total.day.isoformat()} moved by "
            f"{change} since its last snapshot but its unsnapshotted contributions sum to "
            f"{pending.value}; run `manage.py reconcile`."
        )
    return _NewSnapshot(
        day_total_id=day_total.id,
        metric_id=day_total.metric_id,
        metric_name=day_total.metric_name,
        day=day_total.day,
        sequence=day_total.snapshot_count + 1,
        value=day_total.value,
        event_count=day_total.event_count,
        late_event_count=day_total.late_event_count,
        change=change,
        change_events=pending.events,
        late_events=pending.late,
        too_late_events=pending.too_late,
        status=status,
        reason=snapshot_reason(snapshot_count=day_total.snapshot_count, pending=pending),
    )


def _pending_by_day(sources: list[PendingSource]) -> dict[int, LedgerPending]:
    by_day: dict[int, LedgerPending] = {}
    for row in sources:
        if row.pending.contributions:
            before = by_day.get(row.day_total_id)
            by_day[row.day_total_id] = (
                row.pending if before is None else _pending_add(before, row.pending)
            )
    return by_day


def _pending_add(a: LedgerPending, b: LedgerPending) -> LedgerPending:
    return LedgerPending(
        value=a.value + b.value,
        events=a.events + b.events,
        late=a.late + b.late,
        too_late=a.too_late + b.too_late,
        contributions=a.contributions + b.contributions,
    )


def _snapshots_take(now: dt.datetime) -> tuple[list[_NewSnapshot], list[PendingSource]]:
    """Lock the due day totals (stopping applies to them until we commit: the value we copy
    and the contributions we stamp are then exactly consistent), read what their ledger
    holds unstamped and their sources, and build the snapshots. Two statements."""
    day_totals = day_totals_lock_due(now)
    if not day_totals:
        return [], []
    sources = ledger_pending_sources([d.id for d in day_totals])
    pending = _pending_by_day(sources)
    snapshots = [
        snapshot
        for day_total in day_totals
        if (snapshot := _snapshot_for(day_total, pending.get(day_total.id, LedgerPending()), now))
    ]
    anomaly_metrics = {d.metric_id for d in day_totals if d.anomaly_detection}
    _anomalies_score(snapshots, anomaly_metrics)
    return snapshots, sources


# The run's row, its snapshots and their sources in one statement: each snapshot's sources
# join it through its day total (one snapshot per day total per run). Rows are inserted in
# the order given, so ids grow as the day total ids do (history reads order by id).
_RUN_INSERT = """
WITH run AS (
    INSERT INTO snapshots_snapshotrun
        (trigger, started_at, finished_at, duration_ms, outcome, days_snapshotted, error)
    VALUES (%s, %s, %s, %s, %s, %s, '')
    RETURNING id
), taken AS (
    INSERT INTO snapshots_snapshot
        (day_total_id, metric_id, day, sequence, taken_at, run_id, value, event_count,
         late_event_count, change, change_events, late_events, too_late_events, status,
         reason, anomaly)
    SELECT s.day_total_id, s.metric_id, s.day, s.sequence, %s, run.id, s.value,
           s.event_count, s.late_event_count, s.change, s.change_events, s.late_events,
           s.too_late_events, s.status, s.reason, s.anomaly::jsonb
    FROM run,
         unnest(%s::bigint[], %s::bigint[], %s::date[], %s::integer[], %s::numeric[],
                %s::bigint[], %s::bigint[], %s::numeric[], %s::integer[], %s::integer[],
                %s::integer[], %s::text[], %s::text[], %s::text[])
         WITH ORDINALITY AS s(day_total_id, metric_id, day, sequence, value, event_count,
                              late_event_count, change, change_events, late_events,
                              too_late_events, status, reason, anomaly, ord)
    ORDER BY s.ord
    RETURNING id, day_total_id
), sourced AS (
    INSERT INTO snapshots_snapshotsource
        (snapshot_id, metric_id, day, sequence, source, value, event_count,
         late_event_count, change, change_events, late_events)
    SELECT t.id, x.metric_id, x.day, x.sequence, x.source, x.value, x.event_count,
           x.late_event_count, x.change, x.change_events, x.late_events
    FROM unnest(%s::bigint[], %s::bigint[], %s::date[], %s::integer[], %s::text[],
                %s::numeric[], %s::bigint[], %s::bigint[], %s::numeric[], %s::integer[],
                %s::integer[])
         WITH ORDINALITY AS x(day_total_id, metric_id, day, sequence, source, value,
                              event_count, late_event_count, change, change_events,
                              late_events, ord)
    JOIN taken t ON t.day_total_id = x.day_total_id
    ORDER BY x.ord
)
SELECT id FROM run
"""


def _source_rows(
    snapshots: list[_NewSnapshot], sources: list[PendingSource]
) -> list[tuple[_NewSnapshot, PendingSource]]:
    """Every source (with a source total) of each snapshotted day, in source name order:
    O(snapshotted days x their sources)."""
    taken = {s.day_total_id: s for s in snapshots}
    return [
        (taken[row.day_total_id], row)
        for row in sources
        if row.total is not None and row.day_total_id in taken
    ]


def _run_write(
    *,
    trigger: str,
    now: dt.datetime,
    elapsed: dt.timedelta,
    snapshots: list[_NewSnapshot],
    sources: list[PendingSource],
) -> SnapshotRun:
    """Insert the run (outcome OK) with its snapshots and their sources: one statement."""
    duration_ms = Decimal(elapsed.total_seconds() * 1000).quantize(Decimal("0.001"))
    rows = _source_rows(snapshots, sources)
    params: list[object] = [
        str(trigger),
        now,
        now + elapsed,
        duration_ms,
        str(RunOutcome.OK),
        len(snapshots),
        now,
        [s.day_total_id for s in snapshots],
        [s.metric_id for s in snapshots],
        [s.day for s in snapshots],
        [s.sequence for s in snapshots],
        [s.value for s in snapshots],
        [s.event_count for s in snapshots],
        [s.late_event_count for s in snapshots],
        [s.change for s in snapshots],
        [s.change_events for s in snapshots],
        [s.late_events for s in snapshots],
        [s.too_late_events for s in snapshots],
        [str(s.status.value) for s in snapshots],
        [str(s.reason.value) for s in snapshots],
        [None if s.anomaly is None else json.dumps(s.anomaly) for s in snapshots],
        [s.day_total_id for s, _ in rows],
        [s.metric_id for s, _ in rows],
        [s.day for s, _ in rows],
        [s.sequence for s, _ in rows],
        [row.source for _, row in rows],
        [row.total[0] for _, row in rows],
        [row.total[1] for _, row in rows],
        [row.total[2] for _, row in rows],
        [row.pending.value for _, row in rows],
        [row.pending.events for _, row in rows],
        [row.pending.late for _, row in rows],
    ]
    ((run_id,),) = execute_prepared(_RUN_INSERT, params)
    run = SnapshotRun(
        pk=run_id,
        trigger=trigger,
        started_at=now,
        finished_at=now + elapsed,
        duration_ms=duration_ms,
        outcome=RunOutcome.OK,
        days_snapshotted=len(snapshots),
        error="",
    )
    run._state.adding = False
    run._state.db = "default"
    return run


def _anomalies_score(snapshots: list[_NewSnapshot], anomaly_metrics: set[int]) -> None:
    """Score each late correction against its metric's past ones (before this run): one
    bounded query per metric with late corrections in this run, so O(changed days)."""
    late = [
        s
        for s in snapshots
        if s.reason in LATE_CORRECTION_REASONS and s.metric_id in anomaly_metrics
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


def _alerts_raise(snapshots: list[_NewSnapshot], now: dt.datetime) -> None:
    """Rows only, in this transaction; the deliveries are published after the commit."""
    drafts = []
    for s in snapshots:
        where = {"metric_id": s.metric_id, "day": s.day, "sequence": s.sequence}
        name = f"{s.metric_name} on {s.day.isoformat()}"
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
    run). Best effort: if the database is what failed, this cannot be written either, nor
    inside an enclosing transaction the failure doomed."""
    if connection.needs_rollback:
        return
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
    record cannot be written either: that is logged, and the original error propagates.
    Nor can it inside an enclosing transaction that the failure doomed (a replay's commit
    group, which takes no savepoints): that one is rolled back whole."""
    if connection.needs_rollback:
        return
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
            snapshots, sources = _snapshots_take(now)
            if snapshots:
                day_totals_mark_snapshotted(
                    marks=[
                        SnapshotMark(
                            day_total_id=s.day_total_id,
                            sequence=s.sequence,
                            value=s.value,
                            final=s.status == DayStatus.FINAL,
                            restatement=s.reason == SnapshotReason.RESTATEMENT,
                        )
                        for s in snapshots
                    ],
                    now=now,
                )
            run = _run_write(
                trigger=trigger,
                now=now,
                elapsed=_elapsed_since(started),
                snapshots=snapshots,
                sources=sources,
            )
            if snapshots:
                _alerts_raise(snapshots, now)
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
