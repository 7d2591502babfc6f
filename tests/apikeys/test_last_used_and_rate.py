"""The last-used time moves at most once a minute per key (so ingest does not pay a write per
request), and the ingest rate limit counts each key on its own."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.cache import caches
from django.test import override_settings
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apikeys.authentication import ApiKeyAuthentication
from apikeys.models import ApiKey, Scope, api_key_hash
from apikeys.services import LAST_USED_INTERVAL, api_key_create, api_key_mark_used
from tests.apikeys.conftest import client_with
from tests.conftest import T0, event
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db


def _authenticate(raw_key: str) -> ApiKey:
    request = Request(APIRequestFactory().get("/api/days/", HTTP_AUTHORIZATION=f"Token {raw_key}"))
    _, api_key = ApiKeyAuthentication().authenticate(request)
    return api_key


def _stored_last_used(raw_key: str) -> dt.datetime | None:
    return ApiKey.objects.get(key_hash=api_key_hash(raw_key)).last_used_at


def test_last_used_is_written_at_most_once_per_interval(plain_user, django_assert_num_queries):
    _, raw_key = api_key_create(
        user=plain_user, name="k", scopes=[Scope.READ], expires_at=None, now=T0
    )

    # The lookup, and the first note of use:
    with time_machine.travel(T0, tick=False), django_assert_num_queries(2):
        _authenticate(raw_key)
    # The lookup only: noted recently enough.
    almost = T0 + LAST_USED_INTERVAL - dt.timedelta(seconds=1)
    with time_machine.travel(almost, tick=False), django_assert_num_queries(1):
        _authenticate(raw_key)
    assert _stored_last_used(raw_key) == T0

    later = T0 + LAST_USED_INTERVAL + dt.timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        _authenticate(raw_key)
    assert _stored_last_used(raw_key) == later


def test_a_stale_copy_of_the_key_does_not_move_last_used_back_or_twice(plain_user):
    """Two workers that both loaded the key before it was noted: the conditional UPDATE lets
    only the first write."""
    api_key, _ = api_key_create(
        user=plain_user, name="k", scopes=[Scope.READ], expires_at=None, now=T0
    )
    stale_copy = ApiKey.objects.get(pk=api_key.pk)

    api_key_mark_used(api_key=api_key, now=T0 + dt.timedelta(seconds=10))
    api_key_mark_used(api_key=stale_copy, now=T0 + dt.timedelta(seconds=20))

    api_key.refresh_from_db()
    assert api_key.last_used_at == T0 + dt.timedelta(seconds=10)


@pytest.fixture
def local_cache():
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        caches["default"].clear()
        yield


@pytest.mark.usefixtures("local_cache")
@override_settings(INGEST_RATE_LIMIT=(2, 60))
def test_two_keys_of_one_user_are_limited_separately(plain_user):
    first = client_with(api_key_for(plain_user))
    second = client_with(api_key_for(plain_user))

    def post(client, event_id):
        return client.post("/api/events/", event(event_id, timezone.now(), "1"), format="json")

    assert [post(first, f"a{i}").status_code for i in range(3)] == [202, 202, 429]
    assert [post(second, f"b{i}").status_code for i in range(2)] == [202, 202]
