"""Period arithmetic and calendar groups: month and year ends, leap days, ISO weeks."""

from __future__ import annotations

import datetime as dt

import pytest

from aggregation.periods import GroupBy, Period, group_key, period_range, time_groups

D = dt.date


@pytest.mark.parametrize(
    ("period", "today", "expected"),
    [
        (Period.TODAY, D(2026, 11, 20), (D(2026, 11, 20), D(2026, 11, 20))),
        (Period.YESTERDAY, D(2026, 1, 1), (D(2025, 12, 31), D(2025, 12, 31))),
        (Period.YESTERDAY, D(2024, 3, 1), (D(2024, 2, 29), D(2024, 2, 29))),
        (Period.LAST_7_DAYS, D(2026, 1, 3), (D(2025, 12, 28), D(2026, 1, 3))),
        (Period.LAST_30_DAYS, D(2024, 3, 1), (D(2024, 2, 1), D(2024, 3, 1))),
        (Period.LAST_30_DAYS, D(2025, 3, 1), (D(2025, 1, 31), D(2025, 3, 1))),
        (Period.THIS_MONTH, D(2026, 2, 28), (D(2026, 2, 1), D(2026, 2, 28))),
        (Period.THIS_MONTH, D(2026, 3, 1), (D(2026, 3, 1), D(2026, 3, 1))),
        (Period.LAST_MONTH, D(2024, 3, 31), (D(2024, 2, 1), D(2024, 2, 29))),
        (Period.LAST_MONTH, D(2025, 3, 15), (D(2025, 2, 1), D(2025, 2, 28))),
        (Period.LAST_MONTH, D(2026, 1, 1), (D(2025, 12, 1), D(2025, 12, 31))),
        (Period.LAST_MONTH, D(2026, 5, 31), (D(2026, 4, 1), D(2026, 4, 30))),
        (Period.THIS_YEAR, D(2026, 12, 31), (D(2026, 1, 1), D(2026, 12, 31))),
        (Period.THIS_YEAR, D(2026, 1, 1), (D(2026, 1, 1), D(2026, 1, 1))),
        (Period.LAST_YEAR, D(2025, 2, 28), (D(2024, 1, 1), D(2024, 12, 31))),
    ],
)
def test_a_period_covers_the_days_it_names(period, today, expected):
    assert period_range(period=period, today=today) == expected


def test_keys_follow_iso_weeks_across_a_year_end():
    assert group_key(D(2021, 1, 3), GroupBy.WEEK) == "2020-W53"  # a Sunday
    assert group_key(D(2021, 1, 4), GroupBy.WEEK) == "2021-W01"  # the Monday after
    assert group_key(D(2024, 12, 30), GroupBy.WEEK) == "2025-W01"
    assert group_key(D(2024, 2, 29), GroupBy.MONTH) == "2024-02"
    assert group_key(D(2024, 2, 29), GroupBy.YEAR) == "2024"
    assert group_key(D(2024, 2, 29), GroupBy.DAY) == "2024-02-29"


def test_week_groups_are_clipped_to_the_range():
    groups = time_groups(day_from=D(2026, 11, 18), day_to=D(2026, 12, 1), group_by=GroupBy.WEEK)

    assert [(g.key, g.first_day, g.last_day) for g in groups] == [
        ("2026-W47", D(2026, 11, 18), D(2026, 11, 22)),
        ("2026-W48", D(2026, 11, 23), D(2026, 11, 29)),
        ("2026-W49", D(2026, 11, 30), D(2026, 12, 1)),
    ]


def test_month_groups_cover_a_leap_february():
    groups = time_groups(day_from=D(2024, 1, 31), day_to=D(2024, 3, 1), group_by=GroupBy.MONTH)

    assert [(g.key, g.first_day, g.last_day) for g in groups] == [
        ("2024-01", D(2024, 1, 31), D(2024, 1, 31)),
        ("2024-02", D(2024, 2, 1), D(2024, 2, 29)),
        ("2024-03", D(2024, 3, 1), D(2024, 3, 1)),
    ]
