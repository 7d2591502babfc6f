"""Lateness statistics and the completeness estimate, against hand-computed figures."""

from __future__ import annotations

import datetime as dt

import pytest

from aggregation.models import Metric
from events.selectors import lateness
from events.selectors.lateness import day_completeness, lateness_stats
from tests.conftest import T0, event

pytestmark = pytest.mark.django_db
DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)


@pytest.fixture
def small_log(pipeline):
    """web: 10, 20, 30, 40 and 100 s late, all on their day. partner: three events of
    22:00 arriving 1 h, 2 h and 30 h after the day ended (3 h, 4 h and 32 h late)."""
    for n, seconds in enumerate([10, 20, 30, 40, 100]):
        arrival = T0 + seconds * S
        pipeline.post([event(f"w{n}", T0, "1", source="web", arrival_time=arrival)], at=arrival)
    evening = DAY_END - 2 * HOUR
    for n, hours in enumerate([1, 2, 30]):
        arrival = DAY_END + hours * HOUR
        pipeline.post(
            [event(f"p{n}", evening, "1", source="partner", arrival_time=arrival)], at=arrival
        )
    return Metric.objects.get(name="default")


def test_lateness_percentiles_match_a_hand_computed_log(small_log):
    stats = lateness_stats(metric=small_log, day_from=DAY, day_to=DAY)

    partner, web = stats.sources
    assert (web.source, web.count, web.late_count, web.too_late_count) == ("web", 5, 0, 0)
    assert (web.p50, web.p90, web.p99, web.max) == (30 * S, 76 * S, 97.6 * S, 100 * S)
    assert web.captures_99 == dt.timedelta(0)
    assert (partner.source, partner.count, partner.late_count) == ("partner", 3, 3)
    assert partner.too_late_count == 1
    assert (partner.p50, partner.p90, partner.p99, partner.max) == (
        14_400 * S,
        95_040 * S,
        113_184 * S,
        115_200 * S,
    )
    overall = stats.overall
    assert (overall.source, overall.count, overall.late_share) == (None, 8, 3 / 8)
    assert (overall.p50, overall.p90, overall.p99, overall.max) == (
        70 * S,
        44_640 * S,
        108_144 * S,
        115_200 * S,
    )
    assert overall.captures_99 == 30 * HOUR


def test_lateness_recommends_raising_an_allowed_lateness_that_lets_too_many_in_late(small_log):
    stats = lateness_stats(metric=small_log, day_from=DAY, day_to=DAY)

    assert stats.recommended_allowed_lateness == 30 * HOUR
    assert "12.5% of default events arrived after the allowed lateness of 1 day" in (
        stats.recommendation
    )
    assert "1 day 6 h would have captured 99%" in stats.recommendation
    assert "consider raising it to 1 day 6 h." in stats.recommendation
    assert stats.recommendation.count(". ") == 0  # one sentence


def test_lateness_recommends_lowering_an_allowed_lateness_far_longer_than_needed(small_log):
    small_log.allowed_lateness = dt.timedelta(days=5)
    small_log.save()

    stats = lateness_stats(metric=small_log, day_from=DAY, day_to=DAY)

    assert stats.recommendation == (
        "An allowed lateness of 1 day 6 h would have captured 99% of default events, but days "
        "wait 5 days before turning final: lowering the allowed lateness to 1 day 6 h would "
        "make days final sooner."
    )


def test_lateness_says_nothing_when_the_allowed_lateness_fits(small_log):
    small_log.allowed_lateness = 40 * HOUR
    small_log.save()

    stats = lateness_stats(metric=small_log, day_from=DAY, day_to=DAY)

    assert stats.recommendation is None


def test_lateness_of_a_range_without_events_is_empty(small_log):
    later = DAY + dt.timedelta(days=3)

    stats = lateness_stats(metric=small_log, day_from=later, day_to=later)

    assert (stats.overall.count, stats.overall.p50, stats.sources) == (0, None, [])
    assert stats.recommendation is None


def test_the_lateness_api_gives_the_figures_per_source(small_log, api_client):
    response = api_client.get(
        "/api/metrics/default/lateness/", {"from": DAY.isoformat(), "to": DAY.isoformat()}
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["metric"], body["from"], body["to"]) == ("default", "2026-11-20", "2026-11-20")
    assert body["allowed_lateness_seconds"] == 86_400
    assert body["overall"] == {
        "count": 8,
        "late_share": 0.375,
        "too_late_share": 0.125,
        "p50_seconds": 70.0,
        "p90_seconds": 44_640.0,
        "p99_seconds": 108_144.0,
        "max_seconds": 115_200.0,
        "captures_99_seconds": 108_000.0,
    }
    assert [source["source"] for source in body["sources"]] == ["partner", "web"]
    assert body["sources"][1]["p90_seconds"] == 76.0
    assert body["recommended_allowed_lateness_seconds"] == 108_000.0
    assert "consider raising it" in body["recommendation"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/metrics/nope/lateness/", {}, 404),
        ("/api/metrics/default/lateness/", {"from": "20 Nov"}, 400),
        # A range with from after to is empty, as the schema allows (it was a 400 the
        # schema did not announce).
        ("/api/metrics/default/lateness/", {"from": "2026-11-21", "to": "2026-11-20"}, 200),
        ("/api/metrics/default/lateness/", {}, 200),
    ],
)
def test_the_lateness_api_refuses_bad_queries_clearly(api_client, path, params, status):
    response = api_client.get(path, params)

    assert response.status_code == status
    if status != 200:
        assert set(response.json()) >= {"error", "detail"}


# --- Completeness ---------------------------------------------------------------------------

REFERENCE = DAY - dt.timedelta(days=3)
REFERENCE_END = DAY_END - dt.timedelta(days=3)


@pytest.fixture
def arrival_history(pipeline):
    """A final reference day whose events arrived 2 h before its end, and 1 h, 2 h and
    3 h after it: a quarter of a day's events are in at its end, half an hour later... ."""
    noon = REFERENCE_END - 12 * HOUR
    for n, offset in enumerate([-2, 1, 2, 3]):
        arrival = REFERENCE_END + offset * HOUR
        pipeline.post([event(f"r{n}", noon, "1", arrival_time=arrival)], at=arrival)
    pipeline.post([event("today", T0, "1")], at=T0)
    return pipeline


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (DAY_END - 3 * HOUR, 0.0),  # live, before the earliest usual arrival
        (DAY_END - 2 * HOUR, 0.25),  # live
        (DAY_END, 0.25),  # just ended
        (DAY_END + HOUR + 30 * dt.timedelta(minutes=1), 0.5),  # provisional
        (DAY_END + 3 * HOUR, 1.0),
        (DAY_END + 23 * HOUR, 1.0),
    ],
)
def test_completeness_is_the_share_of_a_recent_day_in_by_the_same_age(
    arrival_history, now, expected
):
    day_total = arrival_history.total(DAY)

    assert day_completeness(day_total=day_total, now=now) == expected


def test_completeness_is_null_for_final_days_and_between_0_and_1_otherwise(arrival_history):
    now = DAY_END + 2 * HOUR
    final = arrival_history.total(REFERENCE)
    provisional = arrival_history.total(DAY)

    assert day_completeness(day_total=final, now=now) is None
    assert 0 <= day_completeness(day_total=provisional, now=now) <= 1


def test_completeness_is_null_without_a_final_day_to_learn_from(pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)

    assert day_completeness(day_total=pipeline.total(DAY), now=T0) is None


def test_the_day_api_gives_completeness_null_for_final_days(arrival_history, api_client):
    listing = api_client.get("/api/days/").json()["results"]
    detail = api_client.get(f"/api/days/default/{DAY.isoformat()}/").json()

    completeness = {row["day"]: row["completeness"] for row in listing}
    assert completeness[REFERENCE.isoformat()] is None
    assert set(completeness) == {REFERENCE.isoformat(), DAY.isoformat()}
    assert "completeness" in detail


def test_the_lateness_histogram_counts_events_per_bucket(small_log):
    buckets = lateness.lateness_histogram(metric=small_log, day_from=DAY, day_to=DAY)

    assert [(b.label, b.count) for b in buckets] == [
        ("under 1 min", 4),  # web: 10, 20, 30, 40 s
        ("1 to 10 min", 1),  # web: 100 s
        ("10 min to 1 h", 0),
        ("1 to 6 h", 2),  # partner: 3 h, 4 h
        ("6 to 24 h", 0),
        ("1 to 2 days", 1),  # partner: 32 h
        ("over 2 days", 0),
    ]
    assert sum(b.share for b in buckets) == pytest.approx(1)
