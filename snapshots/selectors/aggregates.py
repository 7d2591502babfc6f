"""Totals, counts and averages over a range of days, grouped by day, ISO week, month, year
or source, as they are now or as the snapshots showed them at a time.

Answered from stored rows only, in one query: the day totals (or the per-source totals)
of the range, or, as of a time, each day's latest snapshot then (and its source slices).
A year of 50 sources is at most ~18k small rows; events are never scanned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from django.db import connection

from aggregation.calendar import DayStatus, day_end, day_status
from aggregation.models import Metric
from aggregation.periods import TIME_GROUPS, GroupBy, group_key, time_groups
from aggregation.selectors import reporting_timezone

ZERO = Decimal(0)
SIX_PLACES = Decimal("0.000001")


@dataclass
class AggregateGroup:
    key: str | None
    first_day: dt.date
    last_day: dt.date
    value: Decimal = ZERO
    event_count: int = 0
    status: DayStatus = DayStatus.FINAL

    @property
    def average(self) -> Decimal | None:
        """value / event_count, half-even to 6 places; None without events."""
        if not self.event_count:
            return None
        with localcontext(prec=80):
            return (self.value / self.event_count).quantize(SIX_PLACES, rounding=ROUND_HALF_EVEN)


@dataclass
class Aggregate:
    metric: Metric
    day_from: dt.date
    day_to: dt.date
    source: str | None
    group_by: GroupBy | None
    as_of: dt.datetime | None
    total: AggregateGroup
    groups: list[AggregateGroup] = field(default_factory=list)
    open_days: int = 0  # days of the range that can still change (live or provisional)


# --- The one query ---------------------------------------------------------------------------

# Each day's latest snapshot taken at or before as_of (the unique (metric, day, sequence)
# index serves the range; the DISTINCT ON keeps the highest sequence per day).
_LATEST_AT = """
SELECT DISTINCT ON (s.day) s.id, s.day, s.value, s.event_count
FROM snapshots_snapshot s
WHERE s.metric_id = %s AND s.day BETWEEN %s AND %s AND s.taken_at <= %s
ORDER BY s.day, s.sequence DESC
"""


def _rows_sql(*, source: str | None, by_source: bool, as_of: dt.datetime | None) -> str:
    """SQL answering (key, value, event_count) rows: key is the day, or the source name."""
    key = "r.source" if by_source else "r.day"
    if as_of is None and source is None and not by_source:
        table = "(SELECT day, value, event_count FROM aggregation_daytotal WHERE {where}) r"
    elif as_of is None:
        table = (
            "(SELECT day, source, value, event_count FROM aggregation_daysourcetotal "
            "WHERE {where}) r"
        )
    elif source is None and not by_source:
        table = f"({_LATEST_AT}) r"
    else:
        # The slices of those snapshots by an id array: an index scan on (snapshot, source)
        # reading ~days x sources rows; a join was planned as a hash over every slice.
        table = (
            "(SELECT ss.day, ss.source, ss.value, ss.event_count "
            "FROM snapshots_snapshotsource ss "
            f"WHERE ss.snapshot_id = ANY(ARRAY(SELECT l.id FROM ({_LATEST_AT}) l))) r"
        )
    where = "metric_id = %s AND day BETWEEN %s AND %s"
    source_filter = "WHERE r.source = %s" if source is not None else ""
    return (
        f"SELECT {key}, sum(r.value), sum(r.event_count) "
        f"FROM {table.format(where=where)} {source_filter} GROUP BY {key}"
    )


def _figures(
    *,
    metric: Metric,
    day_from: dt.date,
    day_to: dt.date,
    source: str | None,
    by_source: bool,
    as_of: dt.datetime | None,
) -> dict[object, tuple[Decimal, int]]:
    params: list[object] = [metric.pk, day_from, day_to]
    if as_of is not None:
        params.append(as_of)
    if source is not None:
        params.append(source)
    with connection.cursor() as cursor:
        cursor.execute(_rows_sql(source=source, by_source=by_source, as_of=as_of), params)
        return {key: (value or ZERO, int(count or 0)) for key, value, count in cursor.fetchall()}


# --- Status ----------------------------------------------------------------------------------


class _StatusOf:
    """Day statuses at `now`. A later day is never "more final" than an earlier one, so a
    group's status is its last day's (live if any day is live, ...)."""

    def __init__(self, metric: Metric, now: dt.datetime) -> None:
        self.tz = reporting_timezone()
        self.lateness = metric.allowed_lateness
        self.now = now

    def __call__(self, day: dt.date) -> DayStatus:
        return day_status(
            day_end=day_end(day, self.tz), allowed_lateness=self.lateness, now=self.now
        )

    def open_days(self, day_from: dt.date, day_to: dt.date) -> int:
        """How many days of the range are not final yet (walking back from its end)."""
        count, day = 0, day_to
        while day >= day_from and self(day) != DayStatus.FINAL:
            count, day = count + 1, day - dt.timedelta(days=1)
        return count


# --- Grouping --------------------------------------------------------------------------------


def _time_grouped(
    figures: dict[object, tuple[Decimal, int]],
    *,
    day_from: dt.date,
    day_to: dt.date,
    group_by: GroupBy,
    status_of: _StatusOf,
) -> list[AggregateGroup]:
    groups = {
        group.key: AggregateGroup(
            key=group.key,
            first_day=group.first_day,
            last_day=group.last_day,
            status=status_of(group.last_day),
        )
        for group in time_groups(day_from=day_from, day_to=day_to, group_by=group_by)
    }
    for day, (value, count) in figures.items():
        group = groups[group_key(day, group_by)]
        group.value += value
        group.event_count += count
    return list(groups.values())


def _ordered(groups: list[AggregateGroup], order: str, limit: int | None) -> list[AggregateGroup]:
    """By key, or by value with ties broken by key ascending."""
    if order == "key":
        groups = sorted(groups, key=lambda g: g.key or "")
    elif order == "-key":
        groups = sorted(groups, key=lambda g: g.key or "", reverse=True)
    elif order == "value":
        groups = sorted(groups, key=lambda g: (g.value, g.key or ""))
    else:
        groups = sorted(groups, key=lambda g: (-g.value, g.key or ""))
    return groups[:limit] if limit is not None else groups


def aggregate_get(
    *,
    metric: Metric,
    day_from: dt.date,
    day_to: dt.date,
    now: dt.datetime,
    source: str | None = None,
    group_by: GroupBy | None = None,
    as_of: dt.datetime | None = None,
    order: str = "key",
    limit: int | None = None,
) -> Aggregate:
    """The figures of one metric over [day_from, day_to] (see the module docstring). With
    `as_of`, every figure and status is as it was at that time."""
    by_source = group_by == GroupBy.SOURCE
    figures = _figures(
        metric=metric,
        day_from=day_from,
        day_to=day_to,
        source=source,
        by_source=by_source,
        as_of=as_of,
    )
    status_of = _StatusOf(metric, as_of if as_of is not None else now)
    range_status = status_of(day_to)
    total = AggregateGroup(key=None, first_day=day_from, last_day=day_to, status=range_status)
    for value, count in figures.values():
        total.value += value
        total.event_count += count
    groups: list[AggregateGroup] = []
    if group_by in TIME_GROUPS:
        groups = _time_grouped(
            figures, day_from=day_from, day_to=day_to, group_by=group_by, status_of=status_of
        )
    elif by_source:
        # A source's figure can still change on any open day of the range, events or not.
        groups = [
            AggregateGroup(
                key=name,
                first_day=day_from,
                last_day=day_to,
                value=value,
                event_count=count,
                status=range_status,
            )
            for name, (value, count) in figures.items()
        ]
    return Aggregate(
        metric=metric,
        day_from=day_from,
        day_to=day_to,
        source=source,
        group_by=group_by,
        as_of=as_of,
        total=total,
        groups=_ordered(groups, order, limit),
        open_days=status_of.open_days(day_from, day_to),
    )


def aggregate_version(
    *,
    metric: Metric,
    day_from: dt.date,
    day_to: dt.date,
    now: dt.datetime,
    as_of: dt.datetime | None = None,
) -> tuple[object, ...]:
    """What aggregate_get's answer over this range depends on, as plain values (its ETag
    and cache key; the query string is added by the caller), in one aggregate query on the
    day totals of the range.

    Every figure comes from the range's day totals, their per-source totals (moved by the
    ledger with the day's revision) or their snapshots: a day appearing changes the count
    and the id sum, an apply the revision sum, a snapshot the snapshot sum (revisions and
    snapshot counts only grow). Statuses move with time alone: a group's is its last day's,
    and days turn closed then final in order, so how many days at the end of the range are
    live and how many provisional gives all of them (computed, no query). The metric's
    allowed lateness and the reporting zone decide those statuses."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(id), sum(revision), sum(snapshot_count) "
            "FROM aggregation_daytotal WHERE metric_id = %s AND day BETWEEN %s AND %s",
            [metric.pk, day_from, day_to],
        )
        figures = cursor.fetchone()
    status_of = _StatusOf(metric, as_of if as_of is not None else now)
    live = provisional = 0
    day = day_to
    while day >= day_from:
        status = status_of(day)
        if status == DayStatus.FINAL:
            break
        if status == DayStatus.LIVE:
            live += 1
        else:
            provisional += 1
        day -= dt.timedelta(days=1)
    return (
        metric.pk,
        metric.name,
        metric.allowed_lateness,
        str(status_of.tz),
        day_from,
        day_to,
        *figures,
        live,
        provisional,
    )


# Each (day, source)'s first published slice in the range: the lowest sequence per pair.
_FIRST_PUBLISHED = """
SELECT f.source, sum(f.value) FROM (
    SELECT DISTINCT ON (ss.day, ss.source) ss.source, ss.value
    FROM snapshots_snapshotsource ss
    WHERE ss.metric_id = %s AND ss.day BETWEEN %s AND %s
    ORDER BY ss.day, ss.source, ss.sequence
) f GROUP BY f.source
"""


def sources_first_published(
    *, metric: Metric, day_from: dt.date, day_to: dt.date
) -> dict[str, Decimal]:
    """Per source, the sum over the range's days of the first value published for it: what
    the period first showed, to measure how much it moved since."""
    with connection.cursor() as cursor:
        cursor.execute(_FIRST_PUBLISHED, [metric.pk, day_from, day_to])
        return {source: value for source, value in cursor.fetchall()}
