"""Named periods and calendar groups of reporting days: pure functions of dates.

A period is relative to "today", the current day in the reporting time zone; the caller
turns `now` into that day (calendar.day_of), so these functions never read the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

MAX_RANGE_DAYS = 3660


class Period(StrEnum):
    TODAY = "today"
    YESTERDAY = "yesterday"
    LAST_7_DAYS = "last_7_days"
    LAST_30_DAYS = "last_30_days"
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    THIS_YEAR = "this_year"
    LAST_YEAR = "last_year"


PERIOD_DESCRIPTIONS = {
    Period.TODAY: "Today",
    Period.YESTERDAY: "Yesterday",
    Period.LAST_7_DAYS: "The last 7 days (today and the 6 days before)",
    Period.LAST_30_DAYS: "The last 30 days (today and the 29 days before)",
    Period.THIS_MONTH: "This month so far",
    Period.LAST_MONTH: "Last month",
    Period.THIS_YEAR: "This year so far",
    Period.LAST_YEAR: "Last year",
}


class GroupBy(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    SOURCE = "source"


TIME_GROUPS = (GroupBy.DAY, GroupBy.WEEK, GroupBy.MONTH, GroupBy.YEAR)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def period_range(*, period: Period, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day (inclusive) of `period` as seen on `today`. "This month" and
    "this year" end today: the days after it have not happened yet."""
    one_day = dt.timedelta(days=1)
    match period:
        case Period.TODAY:
            return today, today
        case Period.YESTERDAY:
            return today - one_day, today - one_day
        case Period.LAST_7_DAYS:
            return today - dt.timedelta(days=6), today
        case Period.LAST_30_DAYS:
            return today - dt.timedelta(days=29), today
        case Period.THIS_MONTH:
            return _month_start(today), today
        case Period.LAST_MONTH:
            last_day = _month_start(today) - one_day
            return _month_start(last_day), last_day
        case Period.THIS_YEAR:
            return today.replace(month=1, day=1), today
        case Period.LAST_YEAR:
            return dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)
    raise ValueError(period)


def days_between(day_from: dt.date, day_to: dt.date) -> Iterator[dt.date]:
    day = day_from
    while day <= day_to:
        yield day
        day += dt.timedelta(days=1)


def group_key(day: dt.date, group_by: GroupBy) -> str:
    """`2026-11-20`, ISO week `2026-W47`, `2026-11`, `2026`."""
    match group_by:
        case GroupBy.DAY:
            return day.isoformat()
        case GroupBy.WEEK:
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        case GroupBy.MONTH:
            return f"{day.year}-{day.month:02d}"
        case GroupBy.YEAR:
            return f"{day.year}"
    raise ValueError(group_by)


@dataclass
class TimeGroup:
    key: str
    first_day: dt.date
    last_day: dt.date


def time_groups(*, day_from: dt.date, day_to: dt.date, group_by: GroupBy) -> list[TimeGroup]:
    """Every group touching the range, in order, its days clipped to the range."""
    groups: list[TimeGroup] = []
    for day in days_between(day_from, day_to):
        key = group_key(day, group_by)
        if groups and groups[-1].key == key:
            groups[-1].last_day = day
        else:
            groups.append(TimeGroup(key=key, first_day=day, last_day=day))
    return groups
