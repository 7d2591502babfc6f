"""Keys at rest and in use: stored only as a hash, several per user, refused with 401 when
expired, revoked or unknown, and with 403 when they lack the scope a request needs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apikeys.models import ApiKey, Scope, api_key_hash
from apikeys.selectors import api_key_role_scopes, api_keys_of_user
from apikeys.services import api_key_create, api_key_revoke
from events.models import Event
from snapshots.models import SnapshotRun
from tests.apikeys.conftest import client_with, tables_containing
from tests.conftest import event
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

ALL = [Scope.INGEST, Scope.READ, Scope.OPERATE]


def _post_event(client, event_id: str):
    return client.post("/api/events/", event(event_id, timezone.now(), "1"), format="json")


def test_the_key_is_nowhere_in_the_database_only_its_hash(plain_user):
    now = timezone.now()
    api_key, raw_key = api_key_create(
        user=plain_user, name="shop", scopes=[Scope.INGEST], expires_at=None, now=now
    )
    # Use it too: nothing on the request path may write it down either.
    assert _post_event(client_with(raw_key), "e1").status_code == 202

    assert tables_containing(raw_key) == []
    assert tables_containing(api_key_hash(raw_key)) == ["apikeys_apikey"]
    assert raw_key.startswith(api_key.prefix)
    assert len(raw_key) > len(api_key.prefix) + 30


def test_a_user_holds_several_named_keys_and_each_works_alone(plain_user):
    first = api_key_for(plain_user)
    second = api_key_for(plain_user)

    api_key_revoke(api_key=ApiKey.objects.get(key_hash=api_key_hash(first)), now=timezone.now())

    assert api_keys_of_user(user=plain_user).count() == 2
    assert client_with(first).get("/api/days/").status_code == 401
    assert client_with(second).get("/api/days/").status_code == 200


@pytest.mark.parametrize(
    ("make_unusable", "detail"),
    [
        pytest.param(
            lambda api_key, now: api_key_revoke(api_key=api_key, now=now), "revoked", id="revoked"
        ),
        pytest.param(
            lambda api_key, now: ApiKey.objects.filter(pk=api_key.pk).update(
                expires_at=now - dt.timedelta(seconds=1)
            ),
            "expired",
            id="expired",
        ),
    ],
)
def test_revoked_and_expired_keys_are_refused_with_401_everywhere(
    staff_user, make_unusable, detail
):
    api_key, raw_key = api_key_create(
        user=staff_user, name="k", scopes=ALL, expires_at=None, now=timezone.now()
    )
    make_unusable(api_key, timezone.now())
    client = client_with(raw_key)

    responses = [
        _post_event(client, "e1"),
        client.get("/api/days/"),
        client.post("/api/snapshots/run/"),
    ]

    assert {r.status_code for r in responses} == {401}
    assert all(detail in r.json()["detail"] for r in responses)
    assert responses[0]["WWW-Authenticate"] == "Token"
    assert not Event.objects.exists()
    assert not SnapshotRun.objects.exists()


def test_a_key_with_an_expiry_works_until_then(plain_user):
    now = timezone.now()
    _, raw_key = api_key_create(
        user=plain_user,
        name="k",
        scopes=[Scope.READ],
        expires_at=now + dt.timedelta(days=1),
        now=now,
    )

    assert client_with(raw_key).get("/api/days/").status_code == 200


@pytest.mark.parametrize(
    "raw_key",
    ["0" * 40, "snapagg_" + "A" * 43, "not a key"],
    ids=["old-format", "new-format", "garbage"],
)
def test_unknown_keys_are_refused_with_401(raw_key):
    assert client_with(raw_key).get("/api/days/").status_code == 401


def test_health_and_schema_stay_open():
    assert client_with("0" * 40).get("/api/health/").status_code == 200
    assert client_with("0" * 40).get("/api/schema/").status_code == 200


# --- Scopes: 403 for a valid key without the one a request needs ----------------------------


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        ([Scope.INGEST], {"post": 202, "get": 403, "run": 403}),
        ([Scope.READ], {"post": 403, "get": 200, "run": 403}),
        ([Scope.OPERATE], {"post": 403, "get": 403, "run": 200}),
        (ALL, {"post": 202, "get": 200, "run": 200}),
    ],
    ids=["ingest", "read", "operate", "all"],
)
def test_each_kind_of_request_needs_its_scope(staff_user, scopes, expected):
    client = client_with(api_key_for(staff_user, scopes=scopes))

    got = {
        "post": _post_event(client, "e1").status_code,
        "get": client.get("/api/days/").status_code,
        "run": client.post("/api/snapshots/run/").status_code,
    }

    assert got == expected


def test_a_missing_scope_is_named_in_the_403(staff_user):
    response = client_with(api_key_for(staff_user, scopes=[Scope.INGEST])).get("/api/metrics/")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert "read" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/metrics/", "/api/days/", "/api/events/nope/"])
def test_every_get_needs_read(staff_user, path):
    without_read = client_with(api_key_for(staff_user, scopes=[Scope.INGEST, Scope.OPERATE]))
    with_read = client_with(api_key_for(staff_user, scopes=[Scope.READ]))

    assert without_read.get(path).status_code == 403
    assert with_read.get(path).status_code in {200, 404}  # 404: no such event


def test_other_writes_need_operate(staff_user):
    """A write a view does not claim for itself (here: DELETE on a read path) is closed to
    keys without "operate" by the default permission, not open to every key."""
    reader = client_with(api_key_for(staff_user, scopes=[Scope.READ, Scope.INGEST]))
    operator = client_with(api_key_for(staff_user, scopes=ALL))

    assert reader.delete("/api/days/").status_code == 403
    assert operator.delete("/api/days/").status_code == 405  # allowed through, no such method


def test_the_operate_scope_needs_a_staff_user(plain_user):
    """Scopes count within the user's role today: a key of a user who is not (or no longer)
    staff cannot operate, whatever its scopes."""
    client = client_with(api_key_for(plain_user, scopes=ALL))

    response = client.post("/api/snapshots/run/")

    assert response.status_code == 403
    assert "operator" in response.json()["detail"]
    plain_user.is_staff = True
    plain_user.save(update_fields=["is_staff"])
    assert client.post("/api/snapshots/run/").status_code == 200


def test_a_viewer_key_cannot_ingest_even_with_the_scope(viewer_user):
    client = client_with(api_key_for(viewer_user, scopes=[Scope.INGEST, Scope.READ]))

    response = _post_event(client, "e1")

    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    assert client.get("/api/days/").status_code == 200


# --- Role defaults and the service's checks -------------------------------------------------


def test_role_defaults(staff_user, plain_user, viewer_user):
    assert api_key_role_scopes(user=staff_user) == ALL
    assert api_key_role_scopes(user=plain_user) == [Scope.INGEST, Scope.READ]
    assert api_key_role_scopes(user=viewer_user) == [Scope.READ]


@pytest.mark.parametrize(
    ("name", "scopes", "expires_in", "message"),
    [
        ("k", [], None, "at least one scope"),
        ("k", ["ingest", "delete"], None, "Unknown scope"),
        (" ", ["read"], None, "name"),
        ("k", ["read"], dt.timedelta(seconds=-1), "future"),
    ],
)
def test_the_service_refuses_bad_keys(plain_user, name, scopes, expires_in, message):
    now = timezone.now()
    expires_at = now + expires_in if expires_in is not None else None

    with pytest.raises(ValidationError, match=message):
        api_key_create(user=plain_user, name=name, scopes=scopes, expires_at=expires_at, now=now)

    assert not ApiKey.objects.exists()


def test_revoking_twice_keeps_the_first_time(plain_user):
    api_key, _ = api_key_create(
        user=plain_user, name="k", scopes=[Scope.READ], expires_at=None, now=timezone.now()
    )
    first, later = timezone.now(), timezone.now() + dt.timedelta(hours=1)

    assert api_key_revoke(api_key=api_key, now=first) is True
    assert api_key_revoke(api_key=api_key, now=later) is False

    api_key.refresh_from_db()
    assert api_key.revoked_at == first
