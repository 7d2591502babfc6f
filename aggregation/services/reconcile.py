"""The reconcile that recomputes every total from first principles, and its record.

Reconcile is the check behind promise 6: the incremental totals must equal what the stored
events say, the contributions must add up to the totals, and each day's latest snapshot must
equal the contributions it covers. It reads O(events in range): it belongs to a nightly job
and to operators, never to the hot path.

The events and the snapshots live in the layers above this one, so their figures come in as
callables (snapshots.services.reconcile passes them); the ledger checks and the record of
the run are this layer's own.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Protocol

from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum

from aggregation.models import Contribution, DaySourceTotal, DayTotal, Metric, ReconcileRun
from aggregation.selectors import day_total_list
from common.numbers import decimal_str

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


class EventFigures(Protocol):
    """What the events layer says of one day: the sum and count of its counted events."""

    value: Decimal
    count: int


class SnapshotFigures(Protocol):
    """What the snapshots layer says of one day: its latest snapshot."""

    sequence: int
    value: Decimal
    event_count: int


@dataclass(frozen=True)
class _NoEvents:
    value: Decimal = ZERO
    count: int = 0


# Each takes a queryset of day total ids and returns figures by day total id.
EventSumsReader = Callable[[QuerySet], dict[int, EventFigures]]
LatestSnapshotsReader = Callable[[QuerySet], dict[int, SnapshotFigures]]


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


def _contribution_sums(day_totals: QuerySet[DayTotal]) -> dict[int, _ContributionSums]:
    contributions = Contribution.objects.filter(day_total_id__in=day_totals.values("pk"))
    return _contribution_sums_sql(contributions)


@dataclass(frozen=True)
class _SourceFigures:
    value: Decimal = ZERO
    events: int = 0
    late: int = 0


# (stored in the source total, recomputed from the contributions) by source, per day total.
_SourcePairs = dict[str, tuple[_SourceFigures, _SourceFigures]]


def _source_pairs(day_totals: QuerySet[DayTotal]) -> dict[int, _SourcePairs]:
    """Each source total next to the sum of the contributions of that source, by day total.
    A source present on one side only meets zeros on the other."""
    ids = day_totals.values("pk")
    stored = {
        (day_total_id, source): _SourceFigures(value, events, late)
        for day_total_id, source, value, events, late in DaySourceTotal.objects.filter(
            day_total_id__in=ids
        )
        .order_by()
        .values_list("day_total_id", "source", "value", "event_count", "late_event_count")
    }
    recomputed = {
        (row["day_total_id"], row["source"]): _SourceFigures(
            row["total"] or ZERO, row["events"] or 0, row["late"] or 0
        )
        for row in Contribution.objects.filter(day_total_id__in=ids)
        .values("day_total_id", "source")
        .annotate(total=Sum("value"), events=Sum("event_count"), late=Sum("late_event_count"))
        .order_by()
    }
    pairs: dict[int, _SourcePairs] = {}
    for key in stored.keys() | recomputed.keys():
        day_total_id, source = key
        pairs.setdefault(day_total_id, {})[source] = (
            stored.get(key, _SourceFigures()),
            recomputed.get(key, _SourceFigures()),
        )
    return pairs


def _figure(value: Decimal | int | None) -> str:
    if value is None:
        return "none"
    return decimal_str(value) if isinstance(value, Decimal) else str(value)


def _day_checks(
    day_total: DayTotal,
    events: EventFigures,
    contributions: _ContributionSums,
    snapshot: SnapshotFigures | None,
    sources: _SourcePairs,
) -> Iterator[tuple[str, Decimal | int | None, Decimal | int | None]]:
    """(check, stored, recomputed) for every figure of one day, then of each of its
    sources (the slices must add up to the day and follow their own contributions)."""
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
    yield (
        "value = sum of its sources",
        day_total.value,
        sum((stored.value for stored, _ in sources.values()), ZERO),
    )
    for source in sorted(sources):
        stored, recomputed = sources[source]
        name = f"source {source!r}" if source else "no-source slice"
        yield f"{name} value = its contributions", stored.value, recomputed.value
        yield f"{name} event count = its contributions", stored.events, recomputed.events
        yield f"{name} late events = its contributions", stored.late, recomputed.late


def _drift_find(
    day_totals: QuerySet[DayTotal],
    event_sums_read: EventSumsReader,
    latest_snapshots_read: LatestSnapshotsReader,
) -> tuple[int, list[Drift]]:
    ids = day_totals.values("pk")
    event_sums = event_sums_read(ids)
    contribution_sums = _contribution_sums(day_totals)
    latest = latest_snapshots_read(ids)
    source_pairs = _source_pairs(day_totals)
    checked = 0
    drift: list[Drift] = []
    ordered = day_totals.select_related("metric").order_by("metric__name", "day")
    for day_total in ordered.iterator(chunk_size=2000):
        checked += 1
        figures = _day_checks(
            day_total,
            event_sums.get(day_total.pk, _NoEvents()),
            contribution_sums.get(day_total.pk, _ContributionSums()),
            latest.get(day_total.pk),
            source_pairs.get(day_total.pk, {}),
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
    that (READ COMMITTED sees each statement's own snapshot). Inside an outer transaction
    (tests) the outer one's isolation applies."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def reconcile_run(
    *,
    now: dt.datetime,
    trigger: str,
    event_sums_read: EventSumsReader,
    latest_snapshots_read: LatestSnapshotsReader,
    metric: Metric | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
) -> ReconcileRun:
    """Recompute every day total in range and record the outcome (drift or none)."""
    started = time.perf_counter()
    with _consistent_reads():
        checked, drift = _drift_find(
            _day_totals_in(metric, day_from, day_to), event_sums_read, latest_snapshots_read
        )
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
