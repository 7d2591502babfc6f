"""The snapshot job: copy every day total that changed (or turned final) into an immutable
snapshot, and stamp the contributions it covers so each change can be explained."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import DatabaseError, connection, transaction
from django.db.models import Case, Count, DateTimeField, ExpressionWrapper, F, Sum, Value, When

from aggregation.calendar import DayStatus
from aggregation.models import DayTotal
from events.models import Contribution
from events.services import day_totals_lock
from snapagg_project.db import advisory_xact_lock_try, is_postgresql
from snapagg_project.numbers import sql_sum
from snapshots.models import RunOutcome, Snapshot, SnapshotReason, SnapshotRun

logger = logging.getLogger(__name__)

SNAPSHOT_LOCK = "snapagg.snapshot_run"
STAMP_CHUNK = 500
ZERO = Decimal(0)


class SnapshotRunBusy(Exception):
    """Another snapshot run holds the lock."""


class SnapshotInvariantError(Exception):
    """A day total disagrees with the contributions that should explain it."""


@dataclass(frozen=True)
class _Pending:
    value: Decimal = ZERO
    events: int = 0
    late: int = 0
    too_late: int = 0
    contributions: int = 0


def _due_day_total_ids(now: dt.datetime) -> set[int]:
    """Days changed since their last snapshot, and days that have turned final without a
    final snapshot. Both queries ride partial indexes: O(such days), never O(history)."""
    changed = DayTotal.objects.filter(snapshot_due=True).order_by().values_list("pk", flat=True)
    turned_final = (
        DayTotal.objects.filter(finalized=False, snapshot_count__gt=0)
        .annotate(
            final_at=ExpressionWrapper(
                F("day_end") + F("metric__allowed_lateness"), output_field=DateTimeField()
            )
        )
        .filter(final_at__lte=now)
        .order_by()
        .values_list("pk", flat=True)
    )
    return set(changed.union(turned_final))


def _pending_by_day(day_total_ids: list[int]) -> dict[int, _Pending]:
    rows = (
        Contribution.objects.filter(snapshot_sequence__isnull=True, day_total_id__in=day_total_ids)
        .values("day_total_id")
        .annotate(
            value=Sum("value"),
            events=Sum("event_count"),
            late=Sum("late_event_count"),
            too_late=Sum("too_late_event_count"),
            contributions=Count("pk"),
        )
    )
    return {
        row["day_total_id"]: _Pending(
            value=sql_sum(row["value"]),
            events=row["events"] or 0,
            late=row["late"] or 0,
            too_late=row["too_late"] or 0,
            contributions=row["contributions"],
        )
        for row in rows
    }


def snapshot_reason(day_total: DayTotal, pending: _Pending) -> SnapshotReason:
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
    day_total: DayTotal, pending: _Pending, run: SnapshotRun, now: dt.datetime
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


def _contributions_stamp(snapshots: list[Snapshot]) -> None:
    for start in range(0, len(snapshots), STAMP_CHUNK):
        chunk = snapshots[start : start + STAMP_CHUNK]
        Contribution.objects.filter(
            snapshot_sequence__isnull=True, day_total_id__in=[s.day_total_id for s in chunk]
        ).update(
            snapshot_sequence=Case(
                *[When(day_total_id=s.day_total_id, then=Value(s.sequence)) for s in chunk]
            )
        )


def _day_totals_mark(snapshots: list[Snapshot], day_totals: dict[int, DayTotal]) -> None:
    marked = []
    for snapshot in snapshots:
        day_total = day_totals[snapshot.day_total_id]
        day_total.snapshot_revision = day_total.revision
        day_total.snapshot_count = snapshot.sequence
        day_total.snapshot_value = snapshot.value
        day_total.last_snapshot_at = snapshot.taken_at
        day_total.finalized = day_total.finalized or snapshot.status == DayStatus.FINAL
        day_total.restated = day_total.restated or snapshot.reason == SnapshotReason.RESTATEMENT
        marked.append(day_total)
    DayTotal.objects.bulk_update(
        marked,
        [
            "snapshot_revision",
            "snapshot_count",
            "snapshot_value",
            "last_snapshot_at",
            "finalized",
            "restated",
        ],
        batch_size=STAMP_CHUNK,
    )


# Marking the day totals and stamping their contributions is one statement on PostgreSQL.
_PG_MARK_AND_STAMP = """
WITH marked AS (
    UPDATE aggregation_daytotal d
    SET snapshot_revision = d.revision,
        snapshot_count = s.sequence,
        snapshot_value = s.value,
        last_snapshot_at = %s,
        finalized = d.finalized OR s.final,
        restated = d.restated OR s.restatement
    FROM unnest(%s::bigint[], %s::integer[], %s::numeric[], %s::boolean[], %s::boolean[])
         AS s(id, sequence, value, final, restatement)
    WHERE d.id = s.id
    RETURNING d.id, s.sequence
)
UPDATE events_contribution c
SET snapshot_sequence = m.sequence
FROM marked m
WHERE c.day_total_id = m.id AND c.snapshot_sequence IS NULL
"""


def _pg_mark_and_stamp(snapshots: list[Snapshot], now: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _PG_MARK_AND_STAMP,
            [
                now,
                [s.day_total_id for s in snapshots],
                [s.sequence for s in snapshots],
                [s.value for s in snapshots],
                [s.status == DayStatus.FINAL for s in snapshots],
                [s.reason == SnapshotReason.RESTATEMENT for s in snapshots],
            ],
        )


def _snapshots_write(run: SnapshotRun, now: dt.datetime) -> int:
    # Locking the due day totals stops applies to those days until we commit: the value we
    # copy and the contributions we stamp are then exactly consistent.
    day_totals = day_totals_lock(_due_day_total_ids(now))
    pending = _pending_by_day(list(day_totals))
    snapshots = [
        snapshot
        for day_total in day_totals.values()
        if (snapshot := _snapshot_for(day_total, pending.get(day_total.pk, _Pending()), run, now))
    ]
    Snapshot.objects.bulk_create(snapshots, batch_size=STAMP_CHUNK)
    if not snapshots:
        return 0
    if is_postgresql():
        _pg_mark_and_stamp(snapshots, now)
    else:
        _contributions_stamp(snapshots)
        _day_totals_mark(snapshots, day_totals)
    return len(snapshots)


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
