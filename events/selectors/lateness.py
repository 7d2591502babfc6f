"""Reads about when events arrive: lateness percentiles per metric and source, a lateness
histogram, and each open day's estimated completeness from the measured arrival profile."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q

from aggregation.calendar import DayStatus
from aggregation.models import DayTotal, Metric, final_at_sql
from aggregation.selectors import metric_list, reporting_timezone
from common.formatting import duration_text
from events.models import Event

HOUR = dt.timedelta(hours=1)


# --- Lateness ------------------------------------------------------------------------------
# Lateness of an event = arrival_time - event_time. How far past its day's end it arrived
# = arrival_time - day_end (negative while its day was still live): that, not lateness, is
# what the allowed lateness is measured against.

LATENESS_PERCENTILES = (0.5, 0.9, 0.99)
CAPTURE_SHARE = 0.99


@dataclass(frozen=True)
class LatenessFigures:
    """Arrival figures of one source (source=None: all sources together).

    late: arrived after its day had ended (it can change a published number).
    too late: arrived after the day's end plus the metric's allowed lateness.
    captures_99: the smallest allowed lateness that would have let 99% of these events
    arrive before their day turned final (the 99th percentile, discrete, of
    max(0, arrival_time - day_end)).
    """

    source: str | None
    count: int
    late_count: int
    too_late_count: int
    p50: dt.timedelta | None
    p90: dt.timedelta | None
    p99: dt.timedelta | None
    max: dt.timedelta | None
    captures_99: dt.timedelta | None

    @property
    def late_share(self) -> float | None:
        return self.late_count / self.count if self.count else None

    @property
    def too_late_share(self) -> float | None:
        return self.too_late_count / self.count if self.count else None


@dataclass(frozen=True)
class LatenessStats:
    metric: Metric
    day_from: dt.date
    day_to: dt.date
    overall: LatenessFigures
    sources: list[LatenessFigures]
    recommended_allowed_lateness: dt.timedelta | None
    recommendation: str | None


def _seconds(value: float | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=value)


_LATENESS = f"""
SELECT GROUPING(e.source) AS is_total, e.source, count(*),
       count(*) FILTER (WHERE e.arrival_time >= d.day_end),
       count(*) FILTER (WHERE e.arrival_time >= {final_at_sql()}),
       percentile_cont(%s::float8[]) WITHIN GROUP (
           ORDER BY extract(epoch FROM e.arrival_time - e.event_time)::float8),
       max(extract(epoch FROM e.arrival_time - e.event_time)::float8),
       percentile_disc(%s::float8) WITHIN GROUP (
           ORDER BY greatest(extract(epoch FROM e.arrival_time - d.day_end)::float8, 0))
FROM events_event e
JOIN aggregation_daytotal d ON d.id = e.day_total_id
JOIN aggregation_metric m ON m.id = d.metric_id
WHERE d.metric_id = %s AND d.day BETWEEN %s AND %s
GROUP BY ROLLUP (e.source)
ORDER BY is_total DESC, e.source
"""


def _lateness_rows(metric: Metric, day_from: dt.date, day_to: dt.date) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            _LATENESS,
            [list(LATENESS_PERCENTILES), CAPTURE_SHARE, metric.pk, day_from, day_to],
        )
        rows = cursor.fetchall()
    return [
        (None if is_total else source, count, late, too_late, *(p or (None,) * 3), top, capture)
        for is_total, source, count, late, too_late, p, top, capture in rows
    ]


def _figures(row: tuple) -> LatenessFigures:
    source, count, late, too_late, p50, p90, p99, top, capture = row
    return LatenessFigures(
        source=source,
        count=count,
        late_count=late,
        too_late_count=too_late,
        p50=_seconds(p50),
        p90=_seconds(p90),
        p99=_seconds(p99),
        max=_seconds(top),
        captures_99=_seconds(capture),
    )


def _round_up(duration: dt.timedelta) -> dt.timedelta:
    """To a figure worth typing into the admin: whole minutes under an hour, else hours."""
    unit = dt.timedelta(minutes=1) if duration < dt.timedelta(hours=1) else dt.timedelta(hours=1)
    return -(-duration // unit) * unit


def _recommendation(
    metric: Metric, overall: LatenessFigures
) -> tuple[dt.timedelta | None, str | None]:
    """Suggest another allowed lateness when the configured one is far off: when more than
    1% of events arrive after it (too short), or when 99% arrive within less than half of it
    and at least an hour earlier (days wait longer than needed to turn final)."""
    if not overall.count or overall.captures_99 is None:
        return None, None
    configured = metric.allowed_lateness
    suggested = _round_up(overall.captures_99)
    # One rounding: the same rounded figure is both what "would have captured 99%" and
    # what to type in, and the advice is one sentence.
    if overall.captures_99 > configured:
        share = overall.too_late_share or 0
        return suggested, (
            f"{share:.1%} of {metric.name} events arrived after the allowed lateness of "
            f"{duration_text(configured)} and changed days that were already final; an "
            f"allowed lateness of {duration_text(suggested)} would have captured 99% of them, "
            f"so consider raising it to {duration_text(suggested)}."
        )
    if overall.captures_99 * 2 < configured and configured - overall.captures_99 >= HOUR:
        return suggested, (
            f"An allowed lateness of {duration_text(suggested)} would have captured 99% of "
            f"{metric.name} events, but days wait {duration_text(configured)} before turning "
            f"final: lowering the allowed lateness to {duration_text(suggested)} would make "
            f"days final sooner."
        )
    return suggested, None


def lateness_stats(*, metric: Metric, day_from: dt.date, day_to: dt.date) -> LatenessStats:
    """Arrival figures of the metric's events on days day_from..day_to (inclusive), all of
    them (counted, held or rejected: what matters is when they arrived), per source and
    overall, with a recommendation when the configured allowed lateness is far off.
    The percentiles are computed in SQL (percentile_cont, percentile_disc)."""
    rows = _lateness_rows(metric, day_from, day_to)
    figures = [_figures(row) for row in rows]
    overall = next(f for f in figures if f.source is None)
    suggested, recommendation = _recommendation(metric, overall)
    return LatenessStats(
        metric=metric,
        day_from=day_from,
        day_to=day_to,
        overall=overall,
        sources=[f for f in figures if f.source is not None],
        recommended_allowed_lateness=suggested,
        recommendation=recommendation,
    )


# --- Lateness histogram --------------------------------------------------------------------

LATENESS_BUCKETS: tuple[tuple[str, dt.timedelta | None], ...] = (
    ("under 1 min", dt.timedelta(minutes=1)),
    ("1 to 10 min", dt.timedelta(minutes=10)),
    ("10 min to 1 h", dt.timedelta(hours=1)),
    ("1 to 6 h", dt.timedelta(hours=6)),
    ("6 to 24 h", dt.timedelta(days=1)),
    ("1 to 2 days", dt.timedelta(days=2)),
    ("over 2 days", None),
)


@dataclass(frozen=True)
class LatenessBucket:
    label: str
    count: int
    share: float


def lateness_histogram(
    *, metric: Metric, day_from: dt.date, day_to: dt.date
) -> list[LatenessBucket]:
    """How many of the metric's events arrived how long after they happened
    (arrival_time - event_time), in fixed buckets: one aggregate query."""
    lateness = ExpressionWrapper(F("arrival_time") - F("event_time"), output_field=DurationField())
    counts: dict[str, Count] = {}
    lower = None
    for index, (_, upper) in enumerate(LATENESS_BUCKETS):
        within = Q(lateness__gte=lower) if lower is not None else Q()
        if upper is not None:
            within &= Q(lateness__lt=upper)
        counts[f"bucket_{index}"] = Count("pk", filter=within)
        lower = upper
    figures = (
        Event.objects.filter(day_total__metric=metric, day_total__day__range=(day_from, day_to))
        .annotate(lateness=lateness)
        .aggregate(**counts)
    )
    total = sum(figures.values())
    return [
        LatenessBucket(
            label=label,
            count=figures[f"bucket_{index}"],
            share=figures[f"bucket_{index}"] / total if total else 0.0,
        )
        for index, (label, _) in enumerate(LATENESS_BUCKETS)
    ]


@dataclass(frozen=True)
class MetricLateness:
    metric: Metric
    stats: LatenessStats
    histogram: list[LatenessBucket]


def metrics_lateness(*, now: dt.datetime, days: int = 30) -> list[MetricLateness]:
    """Every metric's lateness figures and histogram over its last `days` days."""
    day_to = now.astimezone(reporting_timezone()).date()
    day_from = day_to - dt.timedelta(days=days - 1)
    return [
        MetricLateness(
            metric=metric,
            stats=lateness_stats(metric=metric, day_from=day_from, day_to=day_to),
            histogram=lateness_histogram(metric=metric, day_from=day_from, day_to=day_to),
        )
        for metric in metric_list()
    ]


# --- Completeness --------------------------------------------------------------------------

COMPLETENESS_REFERENCE_DAYS = 7
COMPLETENESS_STEPS = 200  # the arrival profile's resolution: half a percent


def _reference_days(metric: Metric, now: dt.datetime) -> list[int]:
    """The metric's most recent days that were final at `now` and had counted events."""
    return list(
        DayTotal.objects.filter(metric=metric, event_count__gt=0)
        .final_by(now)
        .order_by("-day")
        .values_list("pk", flat=True)[:COMPLETENESS_REFERENCE_DAYS]
    )


_ARRIVAL_PROFILE = """
SELECT percentile_disc(%s::float8[]) WITHIN GROUP (
    ORDER BY extract(epoch FROM e.arrival_time - d.day_end)::float8)
FROM events_event e JOIN aggregation_daytotal d ON d.id = e.day_total_id
WHERE e.day_total_id = ANY(%s)
"""


def arrival_profile(*, metric: Metric, now: dt.datetime) -> list[float] | None:
    """Where, relative to its day's end, the k/200-th share of a recent day's events had
    arrived (k = 0..200; seconds, negative while the day was live). None without history."""
    reference = _reference_days(metric, now)
    if not reference:
        return None
    fractions = [k / COMPLETENESS_STEPS for k in range(COMPLETENESS_STEPS + 1)]
    with connection.cursor() as cursor:
        cursor.execute(_ARRIVAL_PROFILE, [fractions, reference])
        profile = cursor.fetchone()[0]
    return profile or None


def completeness_from_profile(profile: list[float], *, day_end: dt.datetime, now: dt.datetime):
    """The share of a recent day's events that had arrived by this day's age, rounded down
    to the profile's half-percent steps."""
    age = (now - day_end).total_seconds()
    reached = bisect.bisect_right(profile, age)  # profile points at or before this age
    return round(max(reached - 1, 0) / COMPLETENESS_STEPS, 3) if reached else 0.0


def days_completeness(
    *,
    day_totals: Iterable[DayTotal],
    now: dt.datetime,
    profiles: dict[int, list[float] | None] | None = None,
) -> dict[int, float | None]:
    """day_completeness for many days at once: one profile query per metric shown.

    `profiles` (metric id -> arrival profile at `now`), when given, is read and filled: two
    calls for the same `now` (a read's version, then its answer) share the queries."""
    day_totals = list(day_totals)
    profiles = {} if profiles is None else profiles
    result: dict[int, float | None] = {}
    for day_total in day_totals:
        if day_total.status_at(now) == DayStatus.FINAL:
            result[day_total.pk] = None
            continue
        if day_total.metric_id not in profiles:
            profiles[day_total.metric_id] = arrival_profile(metric=day_total.metric, now=now)
        profile = profiles[day_total.metric_id]
        result[day_total.pk] = (
            None
            if profile is None
            else completeness_from_profile(profile, day_end=day_total.day_end, now=now)
        )
    return result


def day_completeness(*, day_total: DayTotal, now: dt.datetime) -> float | None:
    """About what share of this day's events have usually arrived by now, from 0 to 1.

    Estimated from the metric's arrival profile: over its last 7 days that are final (and
    had counted events), how long after their day's end each event arrived. The estimate is
    the share of those events that had arrived by the time this day's end is as far behind
    (or ahead) as it is now; e.g. 0.97 one hour after midnight if 97% of recent days' events
    were in by 01:00 the next day. It says nothing about this day's own volume.

    None for a final day (nothing more is expected) and when the metric has no final day
    with events yet (no history to estimate from).
    """
    return days_completeness(day_totals=[day_total], now=now)[day_total.pk]
