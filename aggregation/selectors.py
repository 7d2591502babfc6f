"""Reads about metrics, the reporting time zone and day totals."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import QuerySet

from aggregation.models import DayTotal, Metric, ReportingTimezone


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
