"""GET /api/aggregates/, GET /api/sources/ and the source filter of the day APIs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from aggregation.models import ReportingTimezone
from aggregation.selectors import _stored_zone
from tests.conftest import event

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
DAY = dt.timedelta(days=1)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _post(pipeline, rows, at=NOW):
    """rows: (id, event_time, value, source)."""
    pipeline.post([event(i, when, value, source=source) for i, when, value, source in rows], at=at)


def _get(api_client, **params):
    response = api_client.get("/api/aggregates/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_a_range_with_no_events_is_zero_not_404(api_client, clock):
    body = _get(api_client, **{"from": "2026-11-01", "to": "2026-11-03", "group_by": "day"})

    assert body["total"] == {
        "key": None,
        "from": "2026-11-01",
        "to": "2026-11-03",
        "value": "0",
        "event_count": 0,
        "average": None,
        "status": "final",
    }
    assert [g["key"] for g in body["groups"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert {g["value"] for g in body["groups"]} == {"0"}
    assert (body["metric"], body["source"], body["group_by"], body["as_of"]) == (
        "default",
        None,
        "day",
        None,
    )


def test_this_month_by_week_fills_empty_weeks_and_says_what_can_still_change(
    api_client, pipeline, clock
):
    _post(
        pipeline,
        [
            ("a", NOW - 15 * DAY, "10", "web"),
            ("b", NOW - 15 * DAY, "5", "app"),
            ("c", NOW, "2.5", "web"),
        ],
    )

    body = _get(api_client, period="this_month", group_by="week")

    assert (body["from"], body["to"]) == ("2026-11-01", "2026-11-20")
    assert body["total"]["value"] == "17.50"
    assert body["total"]["event_count"] == 3
    assert body["total"]["average"] == "5.833333"  # 17.5 / 3, half-even to 6 places
    assert body["total"]["status"] == "live"
    weeks = {g["key"]: g for g in body["groups"]}
    assert list(weeks) == ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    assert (weeks["2026-W44"]["from"], weeks["2026-W44"]["to"]) == ("2026-11-01", "2026-11-01")
    assert weeks["2026-W45"]["value"] == "15.00"
    assert weeks["2026-W45"]["status"] == "final"
    assert weeks["2026-W46"]["value"] == "0"
    assert weeks["2026-W47"]["status"] == "live"


def test_average_rounds_half_even_to_six_places(api_client, pipeline, clock):
    _post(pipeline, [("a", NOW, "0.000005", "")])
    _post(pipeline, [("b", NOW, "0", "")])

    body = _get(api_client, period="today")

    # 0.000005 / 2 = 0.0000025 -> 0.000002 (half to even), not 0.000003
    assert body["total"]["average"] == "0.000002"


def test_statuses_follow_the_days_live_provisional_final(api_client, clock):
    body = _get(api_client, period="last_7_days", group_by="day")

    statuses = [g["status"] for g in body["groups"]]
    # The default metric allows one day of lateness: yesterday is provisional.
    assert statuses == ["final"] * 5 + ["provisional", "live"]
    assert (body["from"], body["to"]) == ("2026-11-14", "2026-11-20")


def test_ranking_of_sources_breaks_ties_by_name(api_client, pipeline, clock):
    _post(
        pipeline,
        [
            ("a", NOW, "5", "zeta"),
            ("b", NOW, "5", "alpha"),
            ("c", NOW - DAY, "9", "mid"),
            ("d", NOW, "1", "small"),
            ("e", NOW, "1", ""),
        ],
    )

    top = _get(api_client, period="last_7_days", group_by="source", order="-value", limit=3)
    bottom = _get(api_client, period="last_7_days", group_by="source", order="value")
    by_key = _get(api_client, period="last_7_days", group_by="source", order="-key")

    assert [(g["key"], g["value"]) for g in top["groups"]] == [
        ("mid", "9.00"),
        ("alpha", "5.00"),
        ("zeta", "5.00"),
    ]
    assert [g["key"] for g in bottom["groups"]] == ["", "small", "alpha", "zeta", "mid"]
    assert [g["key"] for g in by_key["groups"]] == ["zeta", "small", "mid", "alpha", ""]
    assert top["total"]["value"] == "21.00"  # the total is the range's, not the top 3's


def test_source_filter_and_unknown_source_is_zeros(api_client, pipeline, clock):
    _post(pipeline, [("a", NOW, "5", "web"), ("b", NOW, "3", "app")])

    web = _get(api_client, period="today", source="web")
    nobody = _get(api_client, period="today", source="nobody", group_by="source")

    assert (web["source"], web["total"]["value"], web["total"]["event_count"]) == ("web", "5.00", 1)
    assert (nobody["total"]["value"], nobody["total"]["event_count"]) == ("0", 0)
    assert nobody["groups"] == []


def test_as_of_answers_what_the_snapshots_showed(api_client, pipeline, clock):
    _post(pipeline, [("a", NOW - DAY, "5", "web")], at=NOW - DAY)
    pipeline.snapshot(at=NOW - DAY + dt.timedelta(minutes=1))
    _post(pipeline, [("b", NOW - DAY, "3", "app"), ("c", NOW, "7", "web")])
    pipeline.snapshot(at=NOW + dt.timedelta(minutes=1))
    _post(pipeline, [("d", NOW, "100", "web")], at=NOW + dt.timedelta(minutes=2))

    params = {"period": "last_7_days", "group_by": "source"}
    before = _get(api_client, **params, as_of=(NOW - DAY).isoformat())
    middle = _get(api_client, **params, as_of=(NOW - dt.timedelta(hours=1)).isoformat())
    after = _get(api_client, **params, as_of=(NOW + dt.timedelta(minutes=1)).isoformat())
    current = _get(api_client, **params)

    assert before["total"]["value"] == "0"
    assert middle["total"]["value"] == "5.00"
    assert [(g["key"], g["value"]) for g in after["groups"]] == [("app", "3.00"), ("web", "12.00")]
    assert after["as_of"] == "2026-11-20T12:01:00Z"
    assert current["total"]["value"] == "115.00"  # the unsnapshotted 100 counts now


def test_groups_by_month_and_year_over_a_leap_year(api_client, pipeline, clock):
    leap = dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)
    _post(pipeline, [("a", leap, "4", "web"), ("b", leap + DAY, "6", "web")])

    months = _get(api_client, **{"from": "2024-01-15", "to": "2024-03-10", "group_by": "month"})
    years = _get(api_client, **{"from": "2023-12-31", "to": "2024-01-01", "group_by": "year"})

    assert [(g["key"], g["from"], g["to"], g["value"]) for g in months["groups"]] == [
        ("2024-01", "2024-01-15", "2024-01-31", "0"),
        ("2024-02", "2024-02-01", "2024-02-29", "4.00"),
        ("2024-03", "2024-03-01", "2024-03-10", "6.00"),
    ]
    assert [g["key"] for g in years["groups"]] == ["2023", "2024"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "fortnight"}, "period"),
        ({"period": "today", "group_by": "hour"}, "group_by"),
        ({"period": "today", "order": "size"}, "order"),
        ({"period": "today", "from": "2026-11-01"}, "period"),
        ({"period": "today", "to": "2026-11-01"}, "period"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
        ({"from": "2016-11-12", "to": "2026-11-20"}, "to"),  # 3,661 days
        ({"period": "today", "as_of": "2026-11-20T10:00:00"}, "as_of"),
        ({"period": "today", "as_of": "yesterday"}, "as_of"),
        ({"from": "2026-11-01"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({}, "from"),
        ({"from": "2026-13-01", "to": "2026-11-01"}, "from"),
        ({"period": "today", "limit": "0"}, "limit"),
        ({"period": "today", "limit": "1001"}, "limit"),
        ({"period": "today", "limit": "ten"}, "limit"),
        ({"period": "today", "metric": "nope"}, "metric"),
        ({"period": "today", "source": "a\x00b"}, "source"),
    ],
)
def test_every_bad_parameter_is_a_400_naming_it(api_client, clock, params, field):
    response = api_client.get("/api/aggregates/", params)

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["field"]) == ("invalid_query", field)
    assert body["detail"]


def test_a_range_of_exactly_3660_days_is_allowed(api_client, clock):
    body = _get(api_client, **{"from": "2016-11-13", "to": "2026-11-20", "group_by": "year"})

    assert len(body["groups"]) == 11


def test_sources_list_largest_first(api_client, pipeline, clock):
    _post(
        pipeline,
        [("a", NOW - 3 * DAY, "2", "web"), ("b", NOW, "3", "web"), ("c", NOW, "9", "app")],
    )

    assert api_client.get("/api/sources/").json() == [
        {
            "name": "app",
            "value": "9.00",
            "event_count": 1,
            "first_day": "2026-11-20",
            "last_day": "2026-11-20",
        },
        {
            "name": "web",
            "value": "5.00",
            "event_count": 2,
            "first_day": "2026-11-17",
            "last_day": "2026-11-20",
        },
    ]
    assert api_client.get("/api/sources/", {"metric": "nope"}).json()["field"] == "metric"


# --- The source filter of the day APIs -------------------------------------------------------


def test_day_list_and_detail_restricted_to_a_source(api_client, pipeline, clock):
    _post(pipeline, [("a", NOW, "5", "web"), ("b", NOW, "3", "app")])
    pipeline.snapshot(at=NOW)
    _post(pipeline, [("c", NOW, "2", "app")])
    pipeline.snapshot(at=NOW + dt.timedelta(minutes=5))
    url = f"/api/days/default/{TODAY}/"

    listed = api_client.get("/api/days/", {"source": "app"}).json()["results"][0]
    detail = api_client.get(url, {"source": "web"}).json()
    unknown = api_client.get(url, {"source": "nobody"}).json()
    as_of = api_client.get(url, {"source": "app", "as_of": NOW.isoformat()}).json()

    assert (listed["value"], listed["event_count"]) == ("5.00", 2)
    assert (detail["value"], detail["event_count"]) == ("5.00", 1)
    assert [(s["sequence"], s["value"], s["change"]) for s in detail["snapshots"]] == [
        (1, "5.00", "5.00"),
        (2, "5.00", "0.00"),
    ]
    assert unknown["value"] == "0.00"
    assert [s["value"] for s in unknown["snapshots"]] == ["0.00", "0.00"]
    assert (as_of["value"], as_of["sequence"]) == ("3.00", 1)


def test_explanation_restricted_to_a_source_sums_to_its_change(api_client, pipeline, clock):
    _post(pipeline, [("a", NOW, "5", "web"), ("b", NOW, "3", "app"), ("c", NOW, "1", "app")])
    pipeline.snapshot(at=NOW)
    url = f"/api/days/default/{TODAY}/snapshots/1/events/"

    app = api_client.get(url, {"source": "app"}).json()
    everyone = api_client.get(url).json()

    assert sorted(e["event_id"] for e in app["results"]) == ["b", "c"]
    assert sum(Decimal(e["value"]) for e in app["results"]) == Decimal("4")
    assert everyone["count"] == 3
    assert api_client.get(url, {"source": "nobody"}).json()["count"] == 0


# --- A reporting zone with DST ---------------------------------------------------------------


@pytest.fixture
def paris():
    ReportingTimezone.objects.filter(id=1).update(name="Europe/Paris")
    _stored_zone.cache_clear()
    yield
    _stored_zone.cache_clear()


def test_days_and_periods_follow_a_dst_zone(api_client, pipeline, paris):
    # 2026-03-29 in Paris is 23 hours long: 2026-03-28T23:00Z to 2026-03-29T22:00Z.
    first = dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC)  # 00:30 CET on the 29th
    last = dt.datetime(2026, 3, 29, 21, 30, tzinfo=dt.UTC)  # 23:30 CEST on the 29th
    after = dt.datetime(2026, 3, 29, 22, 30, tzinfo=dt.UTC)  # 00:30 CEST on the 30th
    _post(pipeline, [("a", first, "1", "web"), ("b", last, "2", "web")], at=after)
    _post(pipeline, [("c", after, "4", "web")], at=after)

    with time_machine.travel(dt.datetime(2026, 3, 29, 21, 59, tzinfo=dt.UTC), tick=False):
        on_the_day = _get(api_client, period="today")
    with time_machine.travel(after, tick=False):
        next_day = _get(api_client, period="yesterday")
        today = _get(api_client, period="today")

    assert (on_the_day["from"], on_the_day["total"]["status"]) == ("2026-03-29", "live")
    assert (next_day["from"], next_day["total"]["value"]) == ("2026-03-29", "3.00")
    assert next_day["total"]["status"] == "provisional"
    assert (today["from"], today["total"]["value"]) == ("2026-03-30", "4.00")


def test_a_25_hour_day_holds_both_one_oclocks(api_client, pipeline, paris, clock):
    # 2026-10-25 in Paris: 02:30 happens twice; both instants are on the 25th.
    early = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # 02:30 CEST
    late = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)  # 02:30 CET
    edge = dt.datetime(2026, 10, 25, 22, 59, tzinfo=dt.UTC)  # 23:59 CET
    _post(pipeline, [("a", early, "1", ""), ("b", late, "2", ""), ("c", edge, "4", "")])

    body = _get(api_client, **{"from": "2026-10-25", "to": "2026-10-26", "group_by": "day"})

    assert [(g["key"], g["value"]) for g in body["groups"]] == [
        ("2026-10-25", "7.00"),
        ("2026-10-26", "0"),
    ]


# --- Query counts ----------------------------------------------------------------------------


def _history(pipeline, days: int) -> None:
    rows = [
        event(f"h{n}-{s}", NOW - n * DAY, "1", source=f"s{s}")
        for n in range(days)
        for s in range(3)
    ]
    pipeline.post(rows, at=NOW)
    pipeline.snapshot(at=NOW)


@pytest.mark.parametrize(
    "params",
    [
        {"period": "this_year", "group_by": "month"},
        {"period": "last_30_days", "group_by": "source", "order": "-value", "limit": "2"},
        {"period": "last_30_days", "group_by": "day", "as_of": NOW.isoformat(), "source": "s1"},
        {"period": "last_30_days", "group_by": "source", "as_of": NOW.isoformat()},
    ],
)
def test_aggregates_take_as_many_queries_for_a_long_history_as_for_a_short_one(
    api_client, pipeline, clock, django_assert_max_num_queries, params, settings
):
    settings.READ_CACHE_SECONDS = 0  # every answer computed (the version query included)
    _history(pipeline, 2)
    api_client.get("/api/aggregates/", params)  # warm: the reporting zone is cached
    with django_assert_max_num_queries(5) as short:
        assert api_client.get("/api/aggregates/", params).status_code == 200
    _history(pipeline, 40)
    with django_assert_max_num_queries(5) as long:
        assert api_client.get("/api/aggregates/", params).status_code == 200

    assert len(long.captured_queries) == len(short.captured_queries)
