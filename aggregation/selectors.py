"""Reads about metrics, the reporting time zone and day totals."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.db.models import F, FilteredRelation, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from aggregation.models import (
    Contribution,
    DaySourceTotal,
    DayTotal,
    Metric,
    ReconcileRun,
    ReportingTimezone,
)
from common.db import execute_prepared, text_storable


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


def metric_list_version() -> list[tuple]:
    """What GET /api/metrics/ shows, as plain values: the metric table has no revision
    counter and is small, so its rows are its version (one light query, no serializer)."""
    return list(
        metric_list().values_list("name", "description", "allowed_lateness", "too_late_policy")
    )


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


def day_total_list_for_source(
    *,
    source: str,
    metric: Metric | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
) -> QuerySet[DayTotal]:
    """The same days as day_total_list, each annotated with one source's figures
    (source_value, source_event_count, source_late_event_count; zeros where it has none)."""
    zero = Value(Decimal(0), output_field=DaySourceTotal._meta.get_field("value"))
    return (
        day_total_list(metric=metric, day_from=day_from, day_to=day_to)
        .annotate(of_source=FilteredRelation("sources", condition=Q(sources__source=source)))
        .annotate(
            source_value=Coalesce(F("of_source__value"), zero),
            source_event_count=Coalesce(F("of_source__event_count"), 0),
            source_late_event_count=Coalesce(F("of_source__late_event_count"), 0),
        )
    )


def day_source_total_get(*, day_total_id: int, source: str) -> DaySourceTotal | None:
    return DaySourceTotal.objects.filter(day_total_id=day_total_id, source=source).first()


@dataclass(frozen=True)
class SourceSummary:
    name: str
    value: Decimal
    event_count: int
    first_day: dt.date
    last_day: dt.date


def source_list(*, metric: Metric) -> list[SourceSummary]:
    """Every source of a metric with its current total, largest value first (ties by
    name), in one grouped query over the per-source day totals."""
    rows = (
        DaySourceTotal.objects.filter(metric=metric)
        .values("source")
        .annotate(total=Sum("value"), events=Sum("event_count"), first=Min("day"), last=Max("day"))
        .order_by("-total", "source")
    )
    return [
        SourceSummary(
            name=row["source"],
            value=row["total"],
            event_count=row["events"],
            first_day=row["first"],
            last_day=row["last"],
        )
        for row in rows
    ]


def day_total_ids(pairs: Iterable[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], int]:
    """Ids of the existing day totals among `pairs`, by (metric_id, day).

    Plain SQL: it runs on every ingest, and building the equivalent ORM query cost more
    than running it.
    """
    wanted = set(pairs)
    if not wanted:
        return {}
    metric_ids = sorted({metric_id for metric_id, _ in wanted})
    days = sorted({day for _, day in wanted})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, metric_id, day FROM {DayTotal._meta.db_table} "
            f"WHERE metric_id IN ({', '.join(['%s'] * len(metric_ids))}) "
            f"AND day IN ({', '.join(['%s'] * len(days))})",
            [*metric_ids, *days],
        )
        rows = cursor.fetchall()
    return {(metric_id, day): pk for pk, metric_id, day in rows if (metric_id, day) in wanted}


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


# --- The ledger -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerPending:
    """What a day's contributions not yet in any snapshot add up to."""

    value: Decimal = Decimal(0)
    events: int = 0
    late: int = 0
    too_late: int = 0
    contributions: int = 0


@dataclass(frozen=True, slots=True)
class PendingSource:
    """One source of a day due for a snapshot: its source total (None if it has none) and
    what its unsnapshotted contributions add up to."""

    day_total_id: int
    source: str
    total: tuple[Decimal, int, int] | None  # value, event_count, late_event_count
    pending: LedgerPending


# Unstamped contributions (contribution_snapshot: snapshot_sequence IS NULL is an index
# condition on it) by (day, source), beside the days' source totals.
_PENDING_AND_SOURCES = """
SELECT coalesce(p.day_total_id, s.day_total_id), coalesce(p.source, s.source),
       s.id IS NOT NULL, s.value, s.event_count, s.late_event_count,
       p.value, p.events, p.late, p.too_late, coalesce(p.contributions, 0)
FROM (
    SELECT day_total_id, source, sum(value) AS value, sum(event_count) AS events,
           sum(late_event_count) AS late, sum(too_late_event_count) AS too_late,
           count(*) AS contributions
    FROM aggregation_contribution
    WHERE snapshot_sequence IS NULL AND day_total_id = ANY(%s)
    GROUP BY day_total_id, source
) p
FULL JOIN (
    SELECT id, day_total_id, source, value, event_count, late_event_count
    FROM aggregation_daysourcetotal WHERE day_total_id = ANY(%s)
) s ON s.day_total_id = p.day_total_id AND s.source = p.source
ORDER BY 1, 2
"""


def ledger_pending_sources(day_total_ids: list[int]) -> list[PendingSource]:
    """Per (day, source) of these (locked) days: the source total and the unsnapshotted
    contributions, in one prepared statement, ordered by day total id then source name.
    A contribution's source may lack a source total; a source total may have nothing
    pending: both come back."""
    if not day_total_ids:
        return []
    rows = execute_prepared(_PENDING_AND_SOURCES, [day_total_ids, day_total_ids])
    return [
        PendingSource(
            day_total_id=day_total_id,
            source=source,
            total=(value, events, late) if has_total else None,
            pending=LedgerPending(
                value=p_value or Decimal(0),
                events=p_events or 0,
                late=p_late or 0,
                too_late=p_too_late or 0,
                contributions=contributions,
            ),
        )
        for (
            day_total_id,
            source,
            has_total,
            value,
            events,
            late,
            p_value,
            p_events,
            p_late,
            p_too_late,
            contributions,
        ) in rows
    ]


def snapshot_contributions(
    *, day_total_id: int, sequence: int, source: str | None = None
) -> list[Contribution]:
    """The contributions a snapshot stamped: the explanation of its change (of one source's
    change when `source` is given)."""
    contributions = Contribution.objects.filter(
        day_total_id=day_total_id, snapshot_sequence=sequence
    )
    if source is not None:
        contributions = contributions.filter(source=source)
    return list(contributions)
