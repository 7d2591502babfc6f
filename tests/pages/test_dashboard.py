"""The dashboard: days of one metric with status, what changed after the day ended, snapshots,
last change; filters, sorting, pagination, the 30-day trend, and a flat query count."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.conftest import T0, event
from tests.factories import MetricFactory
from tests.pages.conftest import DAY, DAY_END, FINAL_AT

pytestmark = pytest.mark.django_db


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _cells(html: str) -> list[list[str]]:
    """The text of each cell of each row of the first table body."""
    body = html.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    return [
        [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        for row in body.split("<tr")[1:]
    ]


def _rows(html: str) -> list[str]:
    return [" ".join(cells) for cells in _cells(html)]


def _days_of(pipeline, days: int, rounds: int, start: dt.datetime = T0) -> None:
    """`days` days of the default metric, each with `rounds` snapshots."""
    for round_ in range(rounds):
        at = start + dt.timedelta(days=days, hours=round_)
        events = [
            event(f"d{n}-r{round_}", start - dt.timedelta(days=n), "1.5") for n in range(days)
        ]
        pipeline.post(events, at=at)
        pipeline.snapshot(at=at)


def test_dashboard_lists_each_day_with_status_change_and_snapshots(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    page = client.get("/").content.decode()
    rows = _rows(page)

    assert len(rows) == 1
    row = rows[0]
    assert "Fri 20 Nov 2026" in row
    assert "25.00" in row  # 10 + 5 + 7 + 3
    assert "Restated" in row
    # After the day ended: c (+7) while provisional, d (+3) once final.
    assert "+10.00 +7.00 late, +3.00 after final" in _text(row)
    assert _cells(page)[0][4] == "3"  # snapshots
    assert "+3.00" in row
    assert "Restated: events arrived after final" in row
    assert "4 (2 late)" in row  # a too-late event is late too


@pytest.mark.parametrize(
    ("now", "status"),
    [
        (DAY_END - dt.timedelta(minutes=30), "Live"),
        (DAY_END + dt.timedelta(hours=4), "Provisional"),
    ],
)
def test_status_badge_follows_the_clock(client, viewer, pipeline, at, now, status):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0)
    at(now)
    client.force_login(viewer)

    row = _rows(client.get("/").content.decode())[0]

    assert status in row


def test_a_day_not_yet_in_a_snapshot_says_so(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "1")], at=T0)
    at(T0)
    client.force_login(viewer)

    cells = _cells(client.get("/").content.decode())[0]

    assert cells[1] == "1.00"
    assert cells[3] == "—"  # no change since a first snapshot that does not exist
    assert cells[4] == "0"  # no snapshot yet


def test_dashboard_shows_one_metric_at_a_time(client, viewer, pipeline, at):
    MetricFactory(name="signups")
    pipeline.post([event("a", T0, "1"), event("s", T0, "9", metric="signups")], at=T0)
    at(T0)
    client.force_login(viewer)

    default = _rows(client.get("/").content.decode())
    signups = _rows(client.get("/", {"metric": "signups"}).content.decode())

    assert len(default) == 1
    assert "1.00" in default[0]
    assert len(signups) == 1
    assert "9.00" in signups[0]


def test_dashboard_filters_by_date_range(client, viewer, pipeline, at):
    _days_of(pipeline, days=5, rounds=1)
    at(T0 + dt.timedelta(days=6))
    client.force_login(viewer)
    day_from, day_to = DAY - dt.timedelta(days=3), DAY - dt.timedelta(days=1)

    rows = _cells(
        client.get(
            "/", {"day_from": day_from.isoformat(), "day_to": day_to.isoformat()}
        ).content.decode()
    )

    assert [row[0] for row in rows] == ["Thu 19 Nov 2026", "Wed 18 Nov 2026", "Tue 17 Nov 2026"]


def test_a_reversed_date_range_is_explained(client, viewer, history):
    client.force_login(viewer)

    page = client.get("/", {"day_from": "2026-11-20", "day_to": "2026-11-01"})

    assert page.status_code == 200
    assert "must be on or after" in page.content.decode()


def test_dashboard_sorts_by_value(client, viewer, pipeline, at):
    pipeline.post(
        [event("x", T0, "5"), event("y", T0 - dt.timedelta(days=1), "50"),
         event("z", T0 - dt.timedelta(days=2), "0.5")],
        at=T0,
    )  # fmt: skip
    at(T0)
    client.force_login(viewer)

    ascending = _cells(client.get("/", {"sort": "value"}).content.decode())
    descending = _cells(client.get("/", {"sort": "-value"}).content.decode())

    assert [row[1] for row in ascending] == ["0.50", "5.00", "50.00"]
    assert [row[1] for row in descending] == ["50.00", "5.00", "0.50"]


def test_dashboard_paginates_thirty_days_a_page(client, viewer, pipeline, at):
    _days_of(pipeline, days=35, rounds=1)
    at(T0 + dt.timedelta(days=36))
    client.force_login(viewer)

    first = client.get("/").content.decode()
    second = client.get("/", {"page": 2}).content.decode()

    assert len(_rows(first)) == 30
    assert len(_rows(second)) == 5
    assert "Page 1 of 2" in first


def test_trend_chart_draws_thirty_days_with_tooltips_and_links(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    html = client.get("/", {"day_to": DAY.isoformat()}).content.decode()
    chart = html.split('<figure class="chart">', 1)[1].split("</figure>", 1)[0]
    plot = chart.split("<figcaption", 1)[0]

    assert plot.count('<rect class="bar ') == 30
    assert "<title>Fri 20 Nov 2026: 25.00 (Restated)</title>" in chart
    assert "<title>Thu 19 Nov 2026: 0.00 (no events)</title>" in chart
    assert f'href="/days/default/{DAY.isoformat()}/"' in chart
    assert "Restated (crossed)" in chart  # the legend names what the pattern means


def _dashboard_queries(client, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(12) as captured:
        response = client.get("/")
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_dashboard_query_count_does_not_grow_with_days_or_snapshots(
    client, viewer, pipeline, at, django_assert_max_num_queries
):
    _days_of(pipeline, days=2, rounds=1)
    at(T0 + dt.timedelta(days=3))
    client.force_login(viewer)
    small = _dashboard_queries(client, django_assert_max_num_queries)

    _days_of(pipeline, days=60, rounds=6, start=T0 + dt.timedelta(days=70))
    at(T0 + dt.timedelta(days=140))
    client.force_login(viewer)  # the clock moved past the session's age
    large = _dashboard_queries(client, django_assert_max_num_queries)

    assert large == small
