"""Conditional GET and the short-lived answer cache on the read APIs (days, a day, a
snapshot's events, aggregates): 304 while nothing the answer shows has moved, a new answer
at once after an apply, a snapshot or a day turning final, a tag per query string, and never
a 304 or a cached answer to a client refused the 200."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework.throttling import BaseThrottle

from snapshots.slice_apis import AggregatesApi
from tests.conftest import event
from tests.factories import UserFactory, api_key_for

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)  # reporting zone: UTC
DAY = dt.timedelta(days=1)
YESTERDAY = (NOW - DAY).date()  # closed at NOW, final one day later (allowed lateness)

RANGE = "/api/aggregates/?from=2026-11-01&to=2026-11-19&group_by=day"
READS = [
    RANGE,
    "/api/aggregates/?period=this_month&group_by=day",
    "/api/days/",
    "/api/days/?metric=default&from=2026-11-01",
    f"/api/days/default/{YESTERDAY}/",
    f"/api/days/default/{YESTERDAY}/?source=web",
    f"/api/days/default/{YESTERDAY}/snapshots/1/events/",
]


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def history(pipeline, clock):
    """Yesterday with one snapshot, and two earlier days."""
    pipeline.post(
        [
            event("a", NOW - DAY, "2.50", source="web"),
            event("b", NOW - 2 * DAY, "1"),
            event("c", NOW - 5 * DAY, "4"),
        ],
        at=NOW,
    )
    pipeline.snapshot(at=NOW)


def _revalidate(client: APIClient, path: str):
    first = client.get(path)
    assert first.status_code == 200, first.content
    return first, client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])


@pytest.mark.parametrize("path", READS)
def test_nothing_moved_gets_304_without_a_body(api_client, history, path):
    first, again = _revalidate(api_client, path)

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert "no-cache" in first["Cache-Control"]
    assert "Authorization" in first["Vary"]


@pytest.mark.parametrize("path", READS)
def test_an_apply_gets_the_new_answer(api_client, pipeline, history, path):
    first = api_client.get(path)
    pipeline.post([event("late", NOW - DAY, "7", source="web")], at=NOW)

    changed = api_client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])

    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    if "/snapshots/" not in path:  # a taken snapshot's events stay what they were
        assert changed.content != first.content


@pytest.mark.parametrize("path", READS[:6])
def test_a_snapshot_gets_the_new_answer(api_client, pipeline, history, path):
    pipeline.post([event("late", NOW - DAY, "7", source="web")], at=NOW)
    first = api_client.get(path)
    pipeline.snapshot(at=NOW)

    changed = api_client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])

    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]


def _statuses(body) -> list[str]:
    if "groups" in body:
        return [group["status"] for group in body["groups"]]
    if "results" in body:
        return [day["status"] for day in body["results"]]
    return [body["status"]]


@pytest.mark.parametrize("path", [RANGE, "/api/days/", f"/api/days/default/{YESTERDAY}/"])
def test_the_day_turning_final_gets_the_new_answer_without_a_write(
    api_client, history, clock, path
):
    first = api_client.get(path)
    assert "provisional" in _statuses(first.json())
    clock.move_to(NOW + DAY)  # yesterday's allowed lateness (one day) has passed

    changed = api_client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])

    assert changed.status_code == 200
    assert "provisional" not in _statuses(changed.json())


def test_completeness_moving_with_time_alone_gets_the_new_answer(api_client, pipeline, clock):
    """A final day whose events arrived from 9 hours before its end to 21 hours after gives
    the metric an arrival profile: today's completeness then grows with the hour while today
    is still live, with no write at all."""
    reference = NOW - 3 * DAY  # 2026-11-17 12:00, final since 2026-11-19 00:00
    pipeline.post(
        [
            event(f"p{n}", reference, "1", arrival_time=reference + n * dt.timedelta(hours=3))
            for n in range(1, 12)
        ],
        at=NOW - DAY,
    )
    pipeline.post([event("today", NOW - dt.timedelta(hours=1), "1")], at=NOW)
    path = f"/api/days/default/{NOW.date()}/"
    first = api_client.get(path)
    clock.move_to(NOW + dt.timedelta(hours=8))  # 20:00: still live, later in the profile

    changed = api_client.get(path, HTTP_IF_NONE_MATCH=first["ETag"])

    assert changed.status_code == 200
    assert (first.json()["status"], changed.json()["status"]) == ("live", "live")
    assert first.json()["completeness"] < changed.json()["completeness"]


def test_each_query_string_has_its_own_tag(api_client, history):
    tags = {
        api_client.get(path)["ETag"]
        for path in [
            RANGE,
            RANGE.replace("group_by=day", "group_by=week"),
            RANGE + "&source=web",
            "/api/days/",
            "/api/days/?page_size=1",
        ]
    }

    assert len(tags) == 5


def test_a_bad_query_or_a_missing_day_is_answered_as_before_without_a_tag(api_client, history):
    bad = api_client.get("/api/aggregates/?period=someday")
    missing = api_client.get("/api/days/default/2020-01-01/")
    malformed = api_client.get("/api/days/default/someday/")

    assert (bad.status_code, missing.status_code, malformed.status_code) == (400, 404, 400)
    assert not any(r.has_header("ETag") for r in (bad, missing, malformed))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/aggregates/?period=someday", 400),
        ("/api/days/?from=someday", 400),
        ("/api/days/?source=a%00b", 400),
        (f"/api/days/default/{YESTERDAY}/?as_of=yesterday", 400),
        (f"/api/days/default/{YESTERDAY}/snapshots/9/events/", 404),
        ("/api/days/default/2020-01-01/", 404),
    ],
)
def test_if_none_match_star_never_turns_an_error_into_a_304(api_client, history, path, status):
    assert api_client.get(path, HTTP_IF_NONE_MATCH="*").status_code == status


class _Refuse(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        return False

    def wait(self) -> float:
        return 30.0


@pytest.mark.parametrize("path", [RANGE, "/api/days/", f"/api/days/default/{YESTERDAY}/"])
def test_a_refused_client_never_gets_a_304_nor_the_cached_answer(
    api_client, history, monkeypatch, path
):
    etag = api_client.get(path)["ETag"]  # the answer is now cached too
    no_key = APIClient()
    ingest_only = APIClient(
        HTTP_AUTHORIZATION=f"Token {api_key_for(UserFactory(), scopes=['ingest'])}"
    )

    anonymous = no_key.get(path, HTTP_IF_NONE_MATCH=etag)
    wrong_scope = ingest_only.get(path, HTTP_IF_NONE_MATCH=etag)
    wrong_scope_plain = ingest_only.get(path)
    monkeypatch.setattr(AggregatesApi, "throttle_classes", [_Refuse])
    throttled = api_client.get(RANGE, HTTP_IF_NONE_MATCH=etag)

    assert anonymous.status_code == 401
    assert (wrong_scope.status_code, wrong_scope_plain.status_code) == (403, 403)
    assert "value" not in wrong_scope_plain.content.decode()
    assert throttled.status_code == 429


def _figures_queries(path: str, client: APIClient) -> tuple[bytes, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return response.content, sum("GROUP BY" in q["sql"] for q in captured.captured_queries)


def test_identical_reads_are_computed_once_while_nothing_moves(api_client, history):
    computed, figure_queries = _figures_queries(RANGE, api_client)
    other_key = APIClient(HTTP_AUTHORIZATION=f"Token {api_key_for(UserFactory())}")

    served, no_figure_queries = _figures_queries(RANGE, other_key)

    assert (figure_queries, no_figure_queries) == (1, 0)
    assert served == computed


def test_the_cache_is_keyed_by_version_so_an_apply_shows_at_once(api_client, pipeline, history):
    before = api_client.get(RANGE).json()["total"]["value"]
    api_client.get(RANGE)  # served from the cache
    pipeline.post([event("more", NOW - DAY, "10")], at=NOW)

    after = api_client.get(RANGE).json()["total"]["value"]

    assert (before, after) == ("7.50", "17.50")


def test_with_the_cache_off_every_read_is_computed(api_client, history, settings):
    settings.READ_CACHE_SECONDS = 0
    _, first = _figures_queries(RANGE, api_client)
    _, second = _figures_queries(RANGE, api_client)

    assert (first, second) == (1, 1)


def test_a_failing_cache_is_skipped_and_the_read_answered(api_client, history, monkeypatch):
    from django.core.cache import caches

    from common import conditional

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches["default"], "get", broken)
    monkeypatch.setattr(caches["default"], "set", broken)
    monkeypatch.setattr(conditional, "_cache_paused_until", 0.0)

    response = api_client.get(RANGE)

    assert response.status_code == 200
    assert response.json()["total"]["value"] == "7.50"
