"""The day page: headline, status in words, step chart, snapshot history, as-of."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from aggregation.models import ReportingTimezone
from aggregation.selectors import _stored_zone
from tests.conftest import T0, event
from tests.factories import MetricFactory
from tests.pages.conftest import DAY, DAY_END, DAY_URL, FINAL_AT
from tests.pages.test_dashboard import _cells, _text

pytestmark = pytest.mark.django_db


def _page(client, user, params=None) -> str:
    client.force_login(user)
    response = client.get(DAY_URL, params or {})
    assert response.status_code == 200
    return response.content.decode()


def _headline(html: str) -> str:
    return _text(html.split('class="headline"', 1)[1].split("</section>", 1)[0])


def test_provisional_day_says_until_when_late_events_may_change_it(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=DAY_END - dt.timedelta(hours=1))
    at(DAY_END + dt.timedelta(hours=4))

    headline = _headline(_page(client, viewer))

    assert "10.00" in headline
    assert "Provisional: late events may still change this until 22 Nov 00:00 UTC." in headline


def test_live_day_says_it_is_not_over(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0)
    at(T0 + dt.timedelta(hours=1))

    headline = _headline(_page(client, viewer))

    assert "Live: this day is not over yet" in headline
    assert "It ends at 21 Nov 00:00 UTC" in headline


def test_final_day_says_what_happens_to_an_event_arriving_now(client, viewer, pipeline, at):
    MetricFactory(name="held", too_late_policy="quarantine")
    pipeline.post([event("a", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=FINAL_AT + dt.timedelta(hours=1))
    at(FINAL_AT + dt.timedelta(hours=2))
    client.force_login(viewer)

    html = client.get(f"/days/held/{DAY.isoformat()}/").content.decode()

    assert "Final since 22 Nov 00:00 UTC" in _headline(html)
    assert "held for an operator to review" in _headline(html)


def test_restated_day_says_why(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))

    headline = _headline(_page(client, viewer))

    assert "25.00" in headline
    assert "Restated" in headline
    assert (
        "changed after it became final at 22 Nov 00:00 UTC, because 1 event arrived after final"
        in (headline)
    )


def test_unpublished_events_are_called_out(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.post([event("b", T0, "5")], at=T0 + dt.timedelta(minutes=5))
    at(T0 + dt.timedelta(minutes=6))

    headline = _headline(_page(client, viewer))

    assert "15.00" in headline
    assert "includes +5.00 from 1 event that arrived after the last snapshot" in headline


def test_a_day_without_snapshot_says_it_is_not_published(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "10")], at=T0)
    at(T0)

    html = _page(client, viewer)

    assert "Not published yet" in _headline(html)
    assert "No snapshot has been taken of this day yet." in html


def test_history_lists_snapshots_newest_first_with_change_reason_and_link(
    client, viewer, history, at
):
    at(FINAL_AT + dt.timedelta(hours=3))

    html = _page(client, viewer)
    rows = _cells(html.split('id="history-heading"', 1)[1])

    assert [row[0] for row in rows] == ["3", "2", "1"]
    assert [row[2] for row in rows] == ["25.00", "22.00", "15.00"]
    assert rows[1][3] == "▲ up +7.00"
    assert rows[1][4] == ("Late events arrived Changed by +7.00 because 1 late event arrived.")
    assert rows[1][5] == "1"  # late events
    assert rows[0][4].startswith("Restated: events arrived after final")
    assert rows[2][4] == "First snapshot of the day First snapshot of the day: 15.00 from 2 events."
    assert f'href="{DAY_URL}snapshots/2/"' in html


def test_a_decrease_is_shown_with_a_down_arrow(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.post([event("refund", T0, "-4")], at=T0 + dt.timedelta(hours=1))
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))
    at(T0 + dt.timedelta(hours=2))

    rows = _cells(_page(client, viewer).split('id="history-heading"', 1)[1])

    assert rows[0][3] == "▼ down \N{MINUS SIGN}4.00"
    assert "Changed by \N{MINUS SIGN}4.00 because 1 new event arrived." in rows[0][4]


def test_step_chart_has_a_marker_per_snapshot_shaped_by_reason_with_tooltips(
    client, viewer, history, at
):
    at(FINAL_AT + dt.timedelta(hours=3))

    html = _page(client, viewer)
    chart = html.split('<figure class="chart">', 1)[1].split("</figure>", 1)[0]

    assert re.search(r'<path class="step" d="M [\d.]+ [\d.]+ H [\d.]+ V [\d.]+ H', chart)
    assert "marker-circle-open" in chart
    assert "marker-triangle" in chart
    assert "marker-diamond" in chart
    assert "<title>#2 · 21 Nov 03:00 UTC · 22.00 (+7.00) · Changed by +7.00 because 1 late" in (
        chart
    )
    assert "<title>The day ended: 21 Nov 00:00 UTC</title>" in chart
    assert "<title>Final from 22 Nov 00:00 UTC</title>" in chart
    assert f'href="{DAY_URL}snapshots/3/"' in chart


def test_as_of_shows_what_the_day_showed_then(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))

    html = _page(client, viewer, {"as_of": "2026-11-21T01:00"})
    answer = _text(html.split('class="as-of-answer"', 1)[1].split("</p>", 1)[0])

    assert "At 21 Nov 01:00 UTC this day showed 15.00 (snapshot #1" in answer
    assert "Since then it moved by ▲ up +10.00 to 25.00." in answer
    assert '<tr class="as-of' in html
    assert "◀ as of" in html
    assert "<title>As of 21 Nov 01:00 UTC</title>" in html


def test_as_of_before_the_first_snapshot_says_nothing_was_published(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))

    html = _page(client, viewer, {"as_of": "2026-11-20T22:00"})

    assert "this day had no snapshot yet: nothing had been published" in html


def test_as_of_reads_times_in_the_reporting_time_zone(client, viewer, history, at):
    ReportingTimezone.objects.filter(pk=1).update(name="Europe/Paris")
    _stored_zone.cache_clear()
    at(FINAL_AT + dt.timedelta(hours=3))
    try:
        # 23:30 in Paris is 22:30 UTC: before the first snapshot (23:00 UTC).
        html = _page(client, viewer, {"as_of": "2026-11-20T23:30"})
    finally:
        ReportingTimezone.objects.filter(pk=1).update(name="UTC")
        _stored_zone.cache_clear()

    assert "this day had no snapshot yet" in html
    assert "Time in Europe/Paris." in html


def test_a_malformed_as_of_is_explained(client, viewer, history):
    html = _page(client, viewer, {"as_of": "yesterday"})

    assert "Enter a valid date/time." in html


@pytest.mark.parametrize("path", ["/days/default/2026-13-01/", "/days/default/2020-01-01/",
                                  "/days/nope/2026-11-20/", f"{DAY_URL}snapshots/9/"])  # fmt: skip
def test_unknown_days_and_snapshots_are_not_found(client, viewer, history, path):
    client.force_login(viewer)

    assert client.get(path).status_code == 404


def _day_page_queries(client, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(12) as captured:
        response = client.get(DAY_URL, {"as_of": "2026-11-20T13:00"})
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_day_page_query_count_does_not_grow_with_snapshots(
    client, viewer, pipeline, at, django_assert_max_num_queries
):
    for n in range(2):
        pipeline.post([event(f"e{n}", T0, "1")], at=T0 + dt.timedelta(minutes=n))
        pipeline.snapshot(at=T0 + dt.timedelta(minutes=n))
    at(T0 + dt.timedelta(hours=2))
    client.force_login(viewer)
    small = _day_page_queries(client, django_assert_max_num_queries)

    for n in range(2, 80):
        pipeline.post([event(f"e{n}", T0, "1")], at=T0 + dt.timedelta(minutes=n))
        pipeline.snapshot(at=T0 + dt.timedelta(minutes=n))
    large = _day_page_queries(client, django_assert_max_num_queries)

    assert large == small
