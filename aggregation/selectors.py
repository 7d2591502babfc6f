"""Reads about metrics, the reporting time zone and day totals."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet

from aggregation.calendar import DayStatus
from aggregation.models import DayTotal, Metric, ReconcileRun, ReportingTimezone
from events.models import Event
from snapagg_project.db import is_postgresql, text_storable
from snapagg_project.formatting import duration_text

HOUR = dt.timedelta(hours=1)


class ReportingTimezoneChanged(ImproperlyConfigured):
    pass


def reporting_timezone_stored() -> str | None:
    """The zone fixed at first migrate, or None before the table exists."""
    try:
        return ReportingTimezone.objects.values_list("name", flat=True).first()
    except DatabaseError:
        return None


def reporting_timezone_mismatch_message(stored: str, configured: str) -> str:
    return (
        f"REPORTING_TIMEZONE is {configured!r}, but this database counts days in {stored!r} "
        f"(fixed at its first migrate). Changing it would silently move events between days. "
        f"Set REPORTING_TIMEZONE={stored} and start again."
    )


def reporting_timezone_verify() -> None:
    """Stop startup when the configured zone differs from the stored one."""
    stored = reporting_timezone_stored()
    if stored is not None and stored != settings.REPORTING_TIMEZONE:
        raise ReportingTimezoneChanged(
            reporting_timezone_mismatch_message(stored, settings.REPORTING_TIMEZONE)
        )


@functools.cache
def _stored_zone() -> ZoneInfo | None:
    stored = reporting_timezone_stored()
    return ZoneInfo(stored) if stored else None


def reporting_timezone() -> ZoneInfo:
    """The zone that defines a day: always the stored one once the database is set up."""
    zone = _stored_zone()
    if zone is None:
        _stored_zone.cache_clear()  # not migrated yet: look again next time
        return ZoneInfo(settings.REPORTING_TIMEZONE)
    return zone


def metric_get(*, name: str) -> Metric | None:
    if not text_storable(name):
        return None
    return Metric.objects.filter(name=name).first()


def metric_default() -> Metric:
    return Metric.objects.get(is_default=True)


def metric_list() -> QuerySet[Metric]:
    return Metric.objects.order_by("name")


def day_total_list(
    *, metric: Metric | None = None, day_from: dt.date | None = None, day_to: dt.date | None = None
) -> QuerySet[DayTotal]:
    """Day totals newest first, optionally for one metric and a date range."""
    day_totals = DayTotal.objects.select_related("metric").order_by("-day", "metric__name")
    if metric is not None:
        day_totals = day_totals.filter(metric=metric)
    if day_from is not None:
        day_totals = day_totals.filter(day__gte=day_from)
    if day_to is not None:
        day_totals = day_totals.filter(day__lte=day_to)
    return day_totals


def day_total_get(*, metric_name: str, day: dt.date) -> DayTotal | None:
    if not text_storable(metric_name):
        return None
    return (
        DayTotal.objects.select_related("metric").filter(metric__name=metric_name, day=day).first()
    )


@dataclass(frozen=True)
class TrendDay:
    day: dt.date
    day_total: DayTotal | None

    @property
    def value(self) -> Decimal:
        # A day with no total had no events: its value is zero.
        return self.day_total.value if self.day_total is not None else Decimal(0)


def day_total_trend(*, metric: Metric, last_day: dt.date, days: int = 30) -> list[TrendDay]:
    """The `days` days ending on `last_day`, oldest first, in one query whatever the range."""
    first_day = last_day - dt.timedelta(days=days - 1)
    by_day = {
        day_total.day: day_total
        for day_total in DayTotal.objects.select_related("metric").filter(
            metric=metric, day__range=(first_day, last_day)
        )
    }
    return [
        TrendDay(day=day, day_total=by_day.get(day))
        for day in (first_day + dt.timedelta(days=n) for n in range(days))
    ]


def reconcile_last() -> ReconcileRun | None:
    """The most recent reconcile run (nightly or by command), or None if there was none."""
    return ReconcileRun.objects.select_related("metric").order_by("-started_at", "-id").first()


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


def percentile_cont(ordered: Sequence[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont, step for step (linear between the two nearest ranks),
    so the SQLite fallback gives the same figures as the SQL."""
    position = fraction * (len(ordered) - 1)
    first, second = math.floor(position), math.ceil(position)
    low, high = ordered[first], ordered[second]
    return low + (position - first) * (high - low)


def percentile_disc(ordered: Sequence[float], fraction: float) -> float:
    """PostgreSQL's percentile_disc: the first value whose cumulative share reaches fraction."""
    rank = math.ceil(fraction * len(ordered))
    return ordered[max(rank, 1) - 1]


def _seconds(value: float | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=value)


_PG_LATENESS = """
SELECT GROUPING(e.source) AS is_total, e.source, count(*),
       count(*) FILTER (WHERE e.arrival_time >= d.day_end),
       count(*) FILTER (WHERE e.arrival_time >= d.day_end + m.allowed_lateness),
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


def _lateness_rows_sql(metric: Metric, day_from: dt.date, day_to: dt.date) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            _PG_LATENESS,
            [list(LATENESS_PERCENTILES), CAPTURE_SHARE, metric.pk, day_from, day_to],
        )
        rows = cursor.fetchall()
    return [
        (None if is_total else source, count, late, too_late, *(p or (None,) * 3), top, capture)
        for is_total, source, count, late, too_late, p, top, capture in rows
    ]


def _figures_python(source: str | None, samples: list[tuple[float, float, bool, bool]]) -> tuple:
    lateness = sorted(sample[0] for sample in samples)
    past_end = sorted(max(sample[1], 0.0) for sample in samples)
    return (
        source,
        len(samples),
        sum(1 for sample in samples if sample[2]),
        sum(1 for sample in samples if sample[3]),
        *(percentile_cont(lateness, fraction) for fraction in LATENESS_PERCENTILES),
        lateness[-1],
        percentile_disc(past_end, CAPTURE_SHARE),
    )


def _lateness_rows_python(metric: Metric, day_from: dt.date, day_to: dt.date) -> list[tuple]:
    """The same figures computed in Python, for SQLite (no ordered-set aggregates)."""
    events = Event.objects.filter(
        day_total__metric=metric, day_total__day__gte=day_from, day_total__day__lte=day_to
    ).values_list("source", "event_time", "arrival_time", "day_total__day_end")
    final_after = metric.allowed_lateness
    by_source: dict[str, list[tuple[float, float, bool, bool]]] = {}
    for source, event_time, arrival_time, day_end in events.iterator(chunk_size=5000):
        by_source.setdefault(source, []).append(
            (
                (arrival_time - event_time).total_seconds(),
                (arrival_time - day_end).total_seconds(),
                arrival_time >= day_end,
                arrival_time >= day_end + final_after,
            )
        )
    if not by_source:
        return [(None, 0, 0, 0, None, None, None, None, None)]
    everything = [sample for samples in by_source.values() for sample in samples]
    rows = [_figures_python(None, everything)]
    rows += [_figures_python(source, by_source[source]) for source in sorted(by_source)]
    return rows


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
    if overall.captures_99 > configured:
        share = overall.too_late_share or 0
        return suggested, (
            f"{share:.1%} of {metric.name} events arrived after the allowed lateness of "
            f"{duration_text(configured)}, so they changed days that were already final. "
            f"An allowed lateness of {duration_text(suggested)} would have captured 99% of "
            f"them; consider raising it."
        )
    if overall.captures_99 * 2 < configured and configured - overall.captures_99 >= HOUR:
        return suggested, (
            f"99% of {metric.name} events arrived within {duration_text(suggested)} of their "
            f"day's end, but days wait {duration_text(configured)} before turning final. "
            f"Lowering the allowed lateness to {duration_text(suggested)} would make days "
            f"final sooner."
        )
    return suggested, None


def lateness_stats(*, metric: Metric, day_from: dt.date, day_to: dt.date) -> LatenessStats:
    """Arrival figures of the metric's events on days day_from..day_to (inclusive), all of
    them (counted, held or rejected: what matters is when they arrived), per source and
    overall, with a recommendation when the configured allowed lateness is far off.
    PostgreSQL computes the percentiles in SQL; other databases in Python, identically."""
    if is_postgresql():
        rows = _lateness_rows_sql(metric, day_from, day_to)
    else:
        rows = _lateness_rows_python(metric, day_from, day_to)
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
        DayTotal.objects.filter(
            metric=metric, day_end__lte=now - metric.allowed_lateness, event_count__gt=0
        )
        .order_by("-day")
        .values_list("pk", flat=True)[:COMPLETENESS_REFERENCE_DAYS]
    )


_PG_ARRIVAL_PROFILE = """
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
    if is_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(_PG_ARRIVAL_PROFILE, [fractions, reference])
            profile = cursor.fetchone()[0]
        return profile or None
    offsets = sorted(
        (arrival - day_end).total_seconds()
        for arrival, day_end in Event.objects.filter(day_total_id__in=reference).values_list(
            "arrival_time", "day_total__day_end"
        )
    )
    return [percentile_disc(offsets, fraction) for fraction in fractions] if offsets else None


def completeness_from_profile(profile: list[float], *, day_end: dt.datetime, now: dt.datetime):
    """The share of a recent day's events that had arrived by this day's age, rounded down
    to the profile's half-percent steps."""
    age = (now - day_end).total_seconds()
    reached = bisect.bisect_right(profile, age)  # profile points at or before this age
    return round(max(reached - 1, 0) / COMPLETENESS_STEPS, 3) if reached else 0.0


def days_completeness(
    *, day_totals: Iterable[DayTotal], now: dt.datetime
) -> dict[int, float | None]:
    """day_completeness for many days at once: one profile query per metric shown."""
    day_totals = list(day_totals)
    profiles: dict[int, list[float] | None] = {}
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
