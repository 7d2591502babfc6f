"""Who may do what through the API, with named users: an operator (staff), an ingest bot
(any token), a viewer (read-only group) and outsiders (no token, a wrong one, a disabled
user's)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory

from apikeys.authentication import ApiKeyAuthentication as TokenAuthentication
from apikeys.selectors import user_is_viewer
from common.access import VIEWER_GROUP
from events.models import Event
from snapshots.models import SnapshotRun
from tests.conftest import event
from tests.factories import UserFactory, api_key_for

pytestmark = pytest.mark.django_db


def _client_for(user) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")


@pytest.fixture
def operator():
    return _client_for(UserFactory(username="operator", is_staff=True))


@pytest.fixture
def ingest_bot():
    return _client_for(UserFactory(username="ingest-bot"))


@pytest.fixture
def viewer():
    user = UserFactory(username="viewer")
    user.groups.add(Group.objects.get_or_create(name=VIEWER_GROUP)[0])
    return _client_for(user)


@pytest.fixture
def disabled_user():
    user = UserFactory(username="former-employee")
    client = _client_for(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    return client


def _post_event(client: APIClient, event_id: str):
    return client.post("/api/events/", event(event_id, timezone.now(), "1"), format="json")


READS = [
    "/api/metrics/",
    "/api/days/",
    "/api/events/nope/",
]


@pytest.mark.parametrize("path", READS)
def test_every_token_holder_can_read(operator, ingest_bot, viewer, path):
    for client in (operator, ingest_bot, viewer):
        assert client.get(path).status_code in {200, 404}  # 404: the event does not exist


def test_the_operator_can_post_events_and_run_snapshots(operator):
    assert _post_event(operator, "by-operator").status_code == 202
    assert operator.post("/api/snapshots/run/").status_code == 200
    assert SnapshotRun.objects.count() == 1


def test_an_ingest_token_can_post_events_but_not_run_snapshots(ingest_bot):
    assert _post_event(ingest_bot, "by-bot").status_code == 202

    response = ingest_bot.post("/api/snapshots/run/")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert "operator" in response.json()["detail"]
    assert not SnapshotRun.objects.exists()


def test_a_viewer_can_read_but_neither_post_nor_run_snapshots(viewer):
    posted = _post_event(viewer, "by-viewer")
    run = viewer.post("/api/snapshots/run/")

    assert (posted.status_code, run.status_code) == (403, 403)
    assert "read-only" in posted.json()["detail"]
    assert not Event.objects.exists()
    assert not SnapshotRun.objects.exists()


def test_a_staff_user_in_the_viewer_group_still_operates():
    user = UserFactory(username="lead", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=VIEWER_GROUP)[0])

    assert _post_event(_client_for(user), "by-lead").status_code == 202


@pytest.mark.parametrize(
    "outsider",
    [
        pytest.param(lambda: APIClient(), id="no-token"),
        pytest.param(lambda: APIClient(HTTP_AUTHORIZATION="Token 0000"), id="wrong-token"),
        pytest.param(lambda: APIClient(HTTP_AUTHORIZATION="Bearer abc"), id="wrong-scheme"),
    ],
)
def test_outsiders_are_refused_everywhere_with_401(outsider):
    client = outsider()

    responses = [
        _post_event(client, "by-outsider"),
        client.post("/api/snapshots/run/"),
        *(client.get(path) for path in READS),
    ]

    assert {r.status_code for r in responses} == {401}
    assert not Event.objects.exists()


def test_a_disabled_users_token_stops_working(disabled_user):
    assert _post_event(disabled_user, "by-former").status_code == 401
    assert disabled_user.get("/api/days/").status_code == 401


@pytest.mark.parametrize(("group", "read_only"), [(VIEWER_GROUP, True), ("analysts", False)])
def test_the_token_and_the_read_only_check_take_one_query(
    django_assert_num_queries, group, read_only
):
    user = UserFactory(username="member")
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    request = Request(
        APIRequestFactory().post("/api/events/", HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    )
    TokenAuthentication().authenticate(request)  # the first use also notes last_used_at

    with django_assert_num_queries(1):
        authenticated, _ = TokenAuthentication().authenticate(request)
        assert user_is_viewer(authenticated) is read_only
