"""The words and drawings the pages are made of: exact figures, times, durations, the
sentence for each snapshot reason, and the chart geometry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aggregation.descriptions import local_time
from common.charts import HEIGHT, PAD, WIDTH, BarInput, StepInput, bar_chart, step_chart
from common.formatting import duration_text, figure, plural, signed_figure
from snapshots.descriptions import snapshot_explanation
from snapshots.models import Snapshot, SnapshotReason

MINUS = "\N{MINUS SIGN}"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1234567.5", "1,234,567.50"),
        ("-1234.5", "-1,234.50"),
        ("0.000001", "0.000001"),
        ("0", "0.00"),
        ("99999999999999.999999", "99,999,999,999,999.999999"),
    ],
)
def test_figures_are_exact_with_thousands_separators(value, text):
    assert figure(Decimal(value)) == text


def test_signed_figures_use_a_real_minus_sign():
    assert signed_figure(Decimal("12.5")) == "+12.50"
    assert signed_figure(Decimal("-3")) == f"{MINUS}3.00"
    assert signed_figure(Decimal("0")) == "+0.00"


@pytest.mark.django_db
def test_times_read_in_the_reporting_zone_with_the_year_only_when_it_differs():
    instant = dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)

    assert local_time(instant, year=2026) == "23 Nov 00:00 UTC"
    assert local_time(instant, year=2027) == "23 Nov 2026 00:00 UTC"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(40, "40 s"), (720, "12 min"), (3600, "1 h"), (19_200, "5 h 20 min"),
     (86_400, "1 day"), (183_600, "2 days 3 h"), (-5, "-5 s")],
)  # fmt: skip
def test_durations_read_in_words(seconds, text):
    assert duration_text(dt.timedelta(seconds=seconds)) == text


def test_plural():
    assert plural(1, "event") == "1 event"
    assert plural(1200, "batch", "batches") == "1,200 batches"


def _snapshot(reason: str, change: str, events: int, late: int = 0, too_late: int = 0):
    return Snapshot(
        reason=reason,
        value=Decimal("100"),
        change=Decimal(change),
        change_events=events,
        late_events=late,
        too_late_events=too_late,
    )


EXPLANATIONS = [
    (SnapshotReason.FIRST, "100", 3, 0, 0, "First snapshot of the day: 100.00 from 3 events."),
    (SnapshotReason.UPDATE, "120", 3, 0, 0, "Changed by +120.00 because 3 new events arrived."),
    (SnapshotReason.LATE_DATA, "120", 3, 3, 0, "Changed by +120.00 because 3 late events arrived."),
    (
        SnapshotReason.LATE_DATA, "-5", 5, 2, 0,
        f"Changed by {MINUS}5.00 because 5 events arrived, 2 of them late.",
    ),
    (
        SnapshotReason.RESTATEMENT, "3", 1, 1, 1,
        "Changed by +3.00 after the day was final, because 1 after-final event arrived.",
    ),
    (
        SnapshotReason.FINAL, "0", 0, 0, 0,
        "No new events: the value did not change and is now settled.",
    ),
    (
        SnapshotReason.UPDATE, "0", 2, 0, 0,
        "No net change although 2 new events arrived, adding up to zero.",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "change", "events", "late", "too_late", "sentence"), EXPLANATIONS
)
def test_each_snapshot_says_why_it_moved(reason, change, events, late, too_late, sentence):
    snapshot = _snapshot(reason, change, events, late=late, too_late=too_late)

    assert snapshot_explanation(snapshot) == sentence


def test_bars_stand_on_the_zero_line_and_negative_ones_hang_below():
    chart = bar_chart(
        [BarInput(Decimal(10), "final", "a"), BarInput(Decimal(-5), "final", "b"),
         BarInput(Decimal(0), "empty", "c")]
    )  # fmt: skip
    up, down, zero = chart.bars

    assert up.y + up.height == pytest.approx(chart.zero_y)
    assert down.y == pytest.approx(chart.zero_y)
    assert up.height == pytest.approx(2 * down.height)
    assert zero.height == 1.0  # a hairline: visible, and visibly zero
    assert up.y >= PAD
    assert down.y + down.height <= HEIGHT - PAD + 0.01


def test_step_chart_holds_each_value_until_the_next_snapshot():
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    steps = [
        StepInput(start, Decimal(10), "circle-open", "first"),
        StepInput(start + dt.timedelta(hours=1), Decimal(30), "circle", "second"),
        StepInput(start + dt.timedelta(hours=2), Decimal(20), "triangle", "third"),
    ]

    chart = step_chart(steps, lines=[(start + dt.timedelta(hours=1, minutes=30), "day-end", "end")])
    commands = chart.path.split(" ")

    assert commands[0] == "M"
    assert chart.path.count(" H ") == 3
    assert chart.path.count(" V ") == 2
    assert commands[-1] == str(WIDTH - PAD)  # the last value holds to the right edge
    first, second, third = chart.markers
    assert first.x < second.x < chart.lines[0].x < third.x
    assert second.y < third.y < first.y  # higher values are drawn higher
    assert third.points  # triangles are polygons; circles are drawn as circles
    assert not first.points
    assert 0 < first.left_percent < second.left_percent < 100


def test_a_small_restatement_of_a_large_value_is_visible_on_a_fitted_axis():
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    steps = [
        StepInput(start, Decimal(4600), "circle-open", "first"),
        StepInput(start + dt.timedelta(hours=1), Decimal(4690), "diamond", "restated"),
    ]

    chart = step_chart(steps)
    first, second = chart.markers

    assert chart.scale.low == Decimal("4577.5")  # not 0: 90 would be 2% of the height
    assert not chart.scale.starts_at_zero
    assert first.y - second.y > (HEIGHT - 2 * PAD) / 2
    assert chart.scale.ticks == [Decimal("4712.5"), Decimal("4645"), Decimal("4577.5")]


def test_a_line_from_near_zero_keeps_its_axis_at_zero():
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    steps = [
        StepInput(start, Decimal(10), "circle-open", "first"),
        StepInput(start + dt.timedelta(hours=1), Decimal(4690), "circle", "more"),
    ]

    assert step_chart(steps).scale.starts_at_zero
