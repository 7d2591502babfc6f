"""Writes about day totals: the reconcile that recomputes every total from first principles.

Reconcile is the check behind promise 6: the incremental totals must equal what the stored
events say, the contributions must add up to the totals, and each day's latest snapshot must
equal the contributions it covers. It reads O(events in range): it belongs to a nightly job
and to operators, never to the hot path.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum

from aggregation.models import DayTotal, Metric, ReconcileRun
from aggregation.selectors import day_total_list
from events.models import BatchStatus, Contribution, Event, QuarantineStatus
from snapagg_project.db import is_postgresql
from snapagg_project.numbers import decimal_str
from snapshots.models import Snapshot

ZERO = Decimal(0)
DRIFT_DETAIL_LIMIT = 1000


@dataclass(frozen=True)
class Drift:
    """One figure that disagrees: `stored` is what the day total (or snapshot) says,
    `recomputed` what the check derived from the records underneath it."""

    metric: str
    day: str
    check: str
    stored: str
    recomputed: str


@dataclass(frozen=True)
class _EventSums:
    value: Decimal = ZERO
    count: int = 0


@dataclass(frozen=True)
class _ContributionSums:
    value: Decimal = ZERO
    events: int = 0
    late: int = 0
    too_late: int = 0
    stamped_value: Decimal = ZERO
    stamped_events: int = 0


def _day_totals_in(
    metric: Metric | None, day_from: dt.date | None, day_to: dt.date | None
) -> QuerySet[DayTotal]:
    return day_total_list(metric=metric, day_from=day_from, day_to=day_to)


def _counted_events(day_totals: QuerySet[DayTotal]) -> QuerySet[Event]:
    """The events each total should count: those of applied batches, less those held or
    rejected in quarantine (accepted ones count)."""
    return Event.objects.filter(
        day_total_id__in=day_totals.values("pk"), batch__status=BatchStatus.APPLIED
    ).filter(Q(quarantine__isnull=True) | Q(quarantine__status=QuarantineStatus.ACCEPTED))


# SQLite has no decimal arithmetic: its SUM() adds floats (7028.99 comes back as
# 7028.98999999999). There the values are fetched and added up as Decimals instead.


def _counted_event_sums(day_totals: QuerySet[DayTotal]) -> dict[int, _EventSums]:
    events = _counted_events(day_totals)
    if is_postgresql():
        rows = events.values("day_total_id").annotate(total=Sum("value"), count=Count("pk"))
        return {
            row["day_total_id"]: _EventSums(row["total"] or ZERO, row["count"])
            for row in rows.order_by()
        }
    totals: dict[int, Decimal] = defaultdict(Decimal)
    counts: dict[int, int] = defaultdict(int)
    for day_total_id, value in events.values_list("day_total_id", "value").iterator(5000):
        totals[day_total_id] += value
        counts[day_total_id] += 1
    return {pk: _EventSums(totals[pk], counts[pk]) for pk in totals}


def _contribution_sums_sql(contributions: QuerySet[Contribution]) -> dict[int, _ContributionSums]:
    stamped = Q(snapshot_sequence__isnull=False)
    rows = contributions.values("day_total_id").annotate(
        stamped_value=Sum("value", filter=stamped),
        stamped_events=Sum("event_count", filter=stamped),
        total=Sum("value"),
        events=Sum("event_count"),
        late=Sum("late_event_count"),
        too_late=Sum("too_late_event_count"),
    )
    return {
        row["day_total_id"]: _ContributionSums(
            value=row["total"] or ZERO,
            events=row["events"] or 0,
            late=row["late"] or 0,
            too_late=row["too_late"] or 0,
            stamped_value=row["stamped_value"] or ZERO,
            stamped_events=row["stamped_events"] or 0,
        )
        for row in rows.order_by()
    }


def _contribution_sums_python(
    contributions: QuerySet[Contribution],
) -> dict[int, _ContributionSums]:
    sums: dict[int, _ContributionSums] = {}
    rows = contributions.values_list(
        "day_total_id",
        "value",
        "event_count",
        "late_event_count",
        "too_late_event_count",
        "snapshot_sequence",
    )
    for day_total_id, value, events, late, too_late, sequence in rows.iterator(5000):
        before = sums.get(day_total_id, _ContributionSums())
        stamped = sequence is not None
        sums[day_total_id] = _ContributionSums(
            value=before.value + value,
            events=before.events + events,
            late=before.late + late,
            too_late=before.too_late + too_late,
            stamped_value=before.stamped_value + (value if stamped else ZERO),
            stamped_events=before.stamped_events + (events if stamped else 0),
        )
    return sums


def _contribution_sums(day_totals: QuerySet[DayTotal]) -> dict[int, _ContributionSums]:
    contributions = Contribution.objects.filter(day_total_id__in=day_totals.values("pk"))
    if is_postgresql():
        return _contribution_sums_sql(contributions)
    return _contribution_sums_python(contributions)


def _latest_snapshots(day_totals: QuerySet[DayTotal]) -> dict[int, Snapshot]:
    # Correlated on the unique (day_total, sequence) index: one index probe per day.
    latest_sequence = (
        Snapshot.objects.filter(day_total_id=OuterRef("day_total_id"))
        .order_by("-sequence")
        .values("sequence")[:1]
    )
    snapshots = Snapshot.objects.filter(
        day_total_id__in=day_totals.values("pk"), sequence=Subquery(latest_sequence)
    ).only("day_total_id", "sequence", "value", "event_count")
    return {snapshot.day_total_id: snapshot for snapshot in snapshots}


def _figure(value: Decimal | int | None) -> str:
    if value is None:
        return "none"
    return decimal_str(value) if isinstance(value, Decimal) else str(value)


def _day_checks(
    day_total: DayTotal,
    events: _EventSums,
    contributions: _ContributionSums,
    snapshot: Snapshot | None,
) -> Iterator[tuple[str, Decimal | int | None, Decimal | int | None]]:
    """(check, stored, recomputed) for every figure of one day."""
    yield "value = sum of its counted events", day_total.value, events.value
    yield "event count = its counted events", day_total.event_count, events.count
    yield "value = sum of its contributions", day_total.value, contributions.value
    yield "event count = its contributions", day_total.event_count, contributions.events
    yield "late events = its contributions", day_total.late_event_count, contributions.late
    yield (
        "too-late events = its contributions",
        day_total.too_late_event_count,
        contributions.too_late,
    )
    latest_value = snapshot.value if snapshot else ZERO
    latest_events = snapshot.event_count if snapshot else 0
    yield "latest snapshot = contributions it covers", latest_value, contributions.stamped_value
    yield (
        "latest snapshot events = contributions it covers",
        latest_events,
        contributions.stamped_events,
    )
    yield (
        "snapshot count = latest snapshot",
        day_total.snapshot_count,
        (snapshot.sequence if snapshot else 0),
    )
    yield "last snapshot value = latest snapshot", day_total.snapshot_value, latest_value


def _drift_find(day_totals: QuerySet[DayTotal]) -> tuple[int, list[Drift]]:
    event_sums = _counted_event_sums(day_totals)
    contribution_sums = _contribution_sums(day_totals)
    latest = _latest_snapshots(day_totals)
    checked = 0
    drift: list[Drift] = []
    ordered = day_totals.select_related("metric").order_by("metric__name", "day")
    for day_total in ordered.iterator(chunk_size=2000):
        checked += 1
        figures = _day_checks(
            day_total,
            event_sums.get(day_total.pk, _EventSums()),
            contribution_sums.get(day_total.pk, _ContributionSums()),
            latest.get(day_total.pk),
        )
        drift.extend(
            Drift(
                metric=day_total.metric.name,
                day=day_total.day.isoformat(),
                check=check,
                stored=_figure(stored),
                recomputed=_figure(recomputed),
            )
            for check, stored, recomputed in figures
            if stored != recomputed
        )
    return checked, drift


@contextmanager
def _consistent_reads() -> Iterator[None]:
    """One snapshot of the database for every query of the reconcile, so an apply that
    commits halfway through cannot show up as drift. PostgreSQL needs REPEATABLE READ for
    that (READ COMMITTED sees each statement's own snapshot); SQLite transactions already
    are. Inside an outer transaction (tests) the outer one's isolation applies."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and is_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def reconcile_run(
    *,
    now: dt.datetime,
    trigger: str,
    metric: Metric | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
) -> ReconcileRun:
    """Recompute every day total in range and record the outcome (drift or none)."""
    started = time.perf_counter()
    with _consistent_reads():
        checked, drift = _drift_find(_day_totals_in(metric, day_from, day_to))
    return ReconcileRun.objects.create(
        trigger=trigger,
        started_at=now,
        finished_at=now + dt.timedelta(seconds=time.perf_counter() - started),
        metric=metric,
        day_from=day_from,
        day_to=day_to,
        days_checked=checked,
        drift_count=len(drift),
        drift=[asdict(item) for item in drift[:DRIFT_DETAIL_LIMIT]],
    )
