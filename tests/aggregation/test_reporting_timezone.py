"""The reporting time zone is fixed at first migrate; days follow its calendar, DST included."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from aggregation.calendar import DayStatus, day_end, day_of, day_start, day_status
from aggregation.models import ReportingTimezone
from aggregation.selectors import ReportingTimezoneChanged, reporting_timezone_verify

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.django_db
def test_the_zone_is_stored_at_first_migrate():
    assert ReportingTimezone.objects.get().name == "UTC"


@pytest.mark.django_db
@override_settings(REPORTING_TIMEZONE="Europe/Paris")
def test_a_changed_zone_stops_startup_with_a_clear_message():
    with pytest.raises(ReportingTimezoneChanged, match="move events between days"):
        reporting_timezone_verify()
    with pytest.raises(SystemCheckError, match="REPORTING_TIMEZONE is 'Europe/Paris'"):
        call_command("check")


@pytest.mark.django_db
def test_the_unchanged_zone_starts():
    reporting_timezone_verify()
    call_command("check")


def test_day_of_follows_the_reporting_calendar():
    instant = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)

    assert day_of(instant, ZoneInfo("UTC")) == dt.date(2026, 11, 20)
    assert day_of(instant, PARIS) == dt.date(2026, 11, 21)


def test_a_day_with_a_dst_change_is_23_or_25_hours_long():
    spring = dt.date(2026, 3, 29)  # Paris moves clocks forward
    autumn = dt.date(2026, 10, 25)  # and back

    assert day_end(spring, PARIS) - day_start(spring, PARIS) == dt.timedelta(hours=23)
    assert day_end(autumn, PARIS) - day_start(autumn, PARIS) == dt.timedelta(hours=25)


def test_a_day_is_live_then_provisional_then_final():
    end = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    lateness = dt.timedelta(hours=6)

    def at(delta: dt.timedelta) -> DayStatus:
        return day_status(day_end=end, allowed_lateness=lateness, now=end + delta)

    assert at(-dt.timedelta(seconds=1)) == DayStatus.LIVE
    assert at(dt.timedelta(0)) == DayStatus.PROVISIONAL
    assert at(lateness - dt.timedelta(seconds=1)) == DayStatus.PROVISIONAL
    assert at(lateness) == DayStatus.FINAL
