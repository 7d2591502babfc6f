"""Pure functions about reporting days: which day an instant falls on, when a day ends,
and whether a day is live, provisional or final at a given moment."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from zoneinfo import ZoneInfo


class DayStatus(StrEnum):
    LIVE = "live"
    PROVISIONAL = "provisional"
    FINAL = "final"


def day_of(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The reporting day of an aware instant."""
    return instant.astimezone(tz).date()


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.UTC)


def day_end(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant after the day (the start of the next day), in UTC."""
    return day_start(day + dt.timedelta(days=1), tz)


def final_at(*, day_end: dt.datetime, allowed_lateness: dt.timedelta) -> dt.datetime:
    """When a day turns final: its end plus the allowed lateness (the rule, in Python)."""
    return day_end + allowed_lateness


def day_status(
    *, day_end: dt.datetime, allowed_lateness: dt.timedelta, now: dt.datetime
) -> DayStatus:
    if now < day_end:
        return DayStatus.LIVE
    if now < final_at(day_end=day_end, allowed_lateness=allowed_lateness):
        return DayStatus.PROVISIONAL
    return DayStatus.FINAL
