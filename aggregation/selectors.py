"""Reads about metrics, the reporting time zone and day totals."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.db.models import QuerySet

from aggregation.models import DayTotal, Metric, ReportingTimezone
from snapagg_project.db import text_storable


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
