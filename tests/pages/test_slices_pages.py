"""The Periods and Sources pages, the day page's split by source and the what-changed page
filtered by source."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import T0, event
from tests.pages.conftest import DAY, DAY_END, DAY_URL, FINAL_AT
from tests.pages.test_dashboard import _text

pytestmark = pytest.mark.django_db


def _get(client, user, url, params=None) -> str:
    client.force_login(user)
    response = client.get(url, params or {})
    assert response.status_code == 200
    return response.content.decode()


def _section(html: str, marker: str) -> str:
    return _text(html.split(marker, 1)[1].split("</section>", 1)[0])


def test_periods_page_says_how_many_days_can_still_change(client, viewer, pipeline, at):
    pipeline.post(
        [event("a", T0, "10", source="web"), event("b", T0 - dt.timedelta(days=3), "5")], at=T0
    )
    at(DAY_END + dt.timedelta(hours=1))  # the 20th is provisional, the 21st live

    html = _get(client, viewer, "/periods/", {"period": "this_month", "group_by": "week"})

    headline = _section(html, 'class="headline"')
    assert "This month so far: 15.00 (live: 2 days can still change)" in headline
    assert "2026-W47" in html
    assert "2026-W45" in html
    assert "Provisional (late events may still arrive)" not in html  # weeks end live or final


def test_periods_page_as_published_and_custom_range(client, viewer, pipeline, at):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.post([event("b", T0, "5")], at=T0)
    at(FINAL_AT + dt.timedelta(days=1))
    params = {"period": "custom", "day_from": "2026-11-19", "day_to": "2026-11-20"}

    now_html = _get(client, viewer, "/periods/", params)
    then_html = _get(client, viewer, "/periods/", {**params, "as_of": "2026-11-20T12:30:00"})

    assert "From Thu 19 Nov 2026 to Fri 20 Nov 2026: 15.00 (final" in _text(now_html)
    assert "From Thu 19 Nov 2026 to Fri 20 Nov 2026: 10.00" in _text(then_html)


def test_a_bad_custom_range_says_why_and_shows_this_month(client, viewer, at):
    at(T0)

    html = _get(client, viewer, "/periods/", {"period": "custom", "day_from": "2026-11-10"})

    assert "A custom range needs both a first and a last day." in html
    assert "This month so far" in _text(html)


def test_sources_page_ranks_with_share_and_change_since_first_published(
    client, viewer, history, at
):
    at(FINAL_AT + dt.timedelta(days=2))

    html = _get(client, viewer, "/sources/", {"period": "this_month"})

    text = _section(html, 'id="ranking-heading"')
    # web 10, mobile 7, no source 5, partner 3: of 25 in all.
    assert text.index("web") < text.index("mobile") < text.index("(no source)")
    assert "40.0%" in text
    assert "28.0%" in text
    assert "not published yet" not in text
    assert "/periods/?metric=default&amp;period=custom" in html


def test_day_page_splits_the_shown_snapshot_by_source(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(days=2))

    latest = _section(_get(client, viewer, DAY_URL), 'id="sources-heading"')
    first = _section(
        _get(
            client,
            viewer,
            DAY_URL,
            {"as_of": (DAY_END - dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")},
        ),
        'id="sources-heading"',
    )

    assert "snapshot #3" in latest
    assert "partner" in latest
    assert "+3.00" in latest
    assert "snapshot #1" in first
    assert "partner" not in first
    assert "mobile" not in first


def test_what_changed_filtered_by_source_adds_up_to_its_change(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(days=2))
    url = f"/days/default/{DAY.isoformat()}/snapshots/1/"

    web = _text(_get(client, viewer, url, {"source": "web"}))
    unknown = _text(_get(client, viewer, url, {"source": "nobody"}))

    assert "Only the events from web" in web
    assert "they changed its value by +10.00" in web
    assert "equals the change of +10.00" in web
    assert "equals the change of +0.00" in unknown
