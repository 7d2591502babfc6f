"""Per-token ingest rate limit: 429 with Retry-After, counted in the shared cache, and never
in the way of durable ingest when the cache itself is down."""

from __future__ import annotations

import logging
import threading

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from common import throttling
from events.models import Event
from snapagg_project.settings import env_rate, redis_cache_location
from tests.conftest import event, uses_redis
from tests.factories import UserFactory, api_key_for

pytestmark = pytest.mark.django_db

TWO_PER_MINUTE = (2, 60)


def _client(username: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {api_key_for(UserFactory(username=username))}")


def _post(client: APIClient, event_id: str):
    return client.post("/api/events/", event(event_id, timezone.now(), "1"), format="json")


@pytest.fixture
def local_cache():
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        caches["default"].clear()
        yield


@pytest.mark.usefixtures("local_cache")
@override_settings(INGEST_RATE_LIMIT=TWO_PER_MINUTE)
def test_posting_beyond_the_rate_is_429_with_retry_after_and_stores_nothing():
    client = _client("busy-bot")

    statuses = [_post(client, f"e{i}").status_code for i in range(3)]
    refused = _post(client, "e-refused")

    assert statuses == [202, 202, 429]
    assert refused.status_code == 429
    assert refused.json()["error"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["e0", "e1"]


@pytest.mark.usefixtures("local_cache")
@override_settings(INGEST_RATE_LIMIT=TWO_PER_MINUTE)
def test_the_limit_is_per_token():
    first, second = _client("bot-a"), _client("bot-b")
    for i in range(2):
        _post(first, f"a{i}")

    assert _post(first, "a-more").status_code == 429
    assert _post(second, "b0").status_code == 202


@pytest.mark.usefixtures("local_cache")
@override_settings(INGEST_RATE_LIMIT=(1, 60))
def test_reads_are_not_limited():
    client = _client("reader")
    _post(client, "a")

    assert _post(client, "b").status_code == 429
    assert {client.get("/api/days/").status_code for _ in range(5)} == {200}


@pytest.mark.usefixtures("local_cache")
@override_settings(INGEST_RATE_LIMIT=None)
def test_the_limit_can_be_switched_off():
    client = _client("unlimited")

    assert {_post(client, f"e{i}").status_code for i in range(20)} == {202}


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
@override_settings(INGEST_RATE_LIMIT=TWO_PER_MINUTE)
def test_the_count_is_shared_between_web_processes_through_redis():
    assert uses_redis()
    redis_cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_cache_location(settings.CELERY_BROKER_URL),
        "KEY_PREFIX": "snapagg-test-throttle",
    }
    client = _client("shared-bot")
    statuses: list[int] = []

    def post_from_another_cache_client(event_id: str) -> None:
        # Each thread gets its own cache client (and Redis connection), like a worker process.
        try:
            statuses.append(_post(client, event_id).status_code)
        finally:
            connection.close()

    with override_settings(CACHES={"default": redis_cache}):
        for event_id in ("x0", "x1", "x2"):
            thread = threading.Thread(target=post_from_another_cache_client, args=(event_id,))
            thread.start()
            thread.join()

    assert statuses == [202, 202, 429]


@pytest.mark.redis
@override_settings(INGEST_RATE_LIMIT=TWO_PER_MINUTE)
def test_a_windows_counter_in_redis_expires_after_its_window():
    redis_cache = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_cache_location(settings.CELERY_BROKER_URL),
        "KEY_PREFIX": "snapagg-test-expiry",
    }
    with override_settings(CACHES={"default": redis_cache}):
        backend = caches["default"]
        key = "throttle:test-expiry:window"
        backend.delete(key)

        counts = [throttling._window_count(key, 60) for _ in range(3)]

        assert counts == [1, 2, 3]
        full_key = backend.make_and_validate_key(key)
        assert 0 < backend._cache.get_client(full_key).ttl(full_key) <= 61
        backend.delete(key)


@override_settings(
    INGEST_RATE_LIMIT=TWO_PER_MINUTE,
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    },
)
def test_ingest_still_answers_202_when_the_cache_is_down(caplog, monkeypatch):
    monkeypatch.setattr(throttling, "_cache_paused_until", 0.0)
    client = _client("bot-in-outage")

    with caplog.at_level(logging.WARNING, logger="common.throttling"):
        statuses = [_post(client, f"e{i}").status_code for i in range(3)]

    assert statuses == [202, 202, 202]
    assert Event.objects.count() == 3
    # The first request finds the cache down; the next ones skip it for a while instead of
    # each waiting for its timeout.
    assert caplog.text.count("rate limit not applied") == 1


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("100/second", (100, 1)),
        ("20/s", (20, 1)),
        ("6000/minute", (6000, 60)),
        ("10/hour", (10, 3600)),
        ("5/day", (5, 86400)),
        ("off", None),
        ("0", None),
    ],
)
def test_the_rate_is_read_from_the_environment(monkeypatch, raw, parsed):
    monkeypatch.setenv("INGEST_RATE_LIMIT", raw)

    assert env_rate("INGEST_RATE_LIMIT", "100/second") == parsed


@pytest.mark.parametrize("raw", ["fast", "100", "-1/s", "10/fortnight", "1.5/s"])
def test_a_malformed_rate_stops_startup(monkeypatch, raw):
    monkeypatch.setenv("INGEST_RATE_LIMIT", raw)

    with pytest.raises(ImproperlyConfigured, match="INGEST_RATE_LIMIT"):
        env_rate("INGEST_RATE_LIMIT", "100/second")
