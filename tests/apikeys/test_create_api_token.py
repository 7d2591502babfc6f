"""create_api_token <username> [--name N] [--scopes ...] [--expires-in-days D]."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from apikeys.models import ApiKey, Scope, api_key_hash
from tests.apikeys.conftest import client_with

pytestmark = pytest.mark.django_db


def _create(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def _stored(raw_key: str) -> ApiKey:
    return ApiKey.objects.get(key_hash=api_key_hash(raw_key))


@pytest.mark.parametrize(
    ("user_fixture", "scopes"),
    [
        ("staff_user", [Scope.INGEST, Scope.READ, Scope.OPERATE]),
        ("plain_user", [Scope.INGEST, Scope.READ]),
        ("viewer_user", [Scope.READ]),
    ],
)
def test_without_scopes_a_key_gets_what_the_role_allows(request, user_fixture, scopes):
    user = request.getfixturevalue(user_fixture)

    raw_key, _ = _create(user.username)

    api_key = _stored(raw_key)
    assert api_key.scopes == scopes
    assert api_key.name == "default"
    assert api_key.expires_at is None


def test_name_scopes_and_expiry(plain_user):
    before = timezone.now()

    raw_key, _ = _create(
        plain_user.username,
        "--name",
        "shop ingest",
        "--scopes",
        "ingest",
        "--expires-in-days",
        "30",
    )

    api_key = _stored(raw_key)
    assert (api_key.name, api_key.scopes) == ("shop ingest", [Scope.INGEST])
    assert before + dt.timedelta(days=30) <= api_key.expires_at
    assert api_key.expires_at <= timezone.now() + dt.timedelta(days=30)
    client = client_with(raw_key)
    assert client.get("/api/days/").status_code == 403  # no read scope


def test_a_scope_beyond_the_role_is_kept_with_a_note(plain_user):
    raw_key, err = _create(plain_user.username, "--scopes", "read,operate")

    assert _stored(raw_key).scopes == [Scope.READ, Scope.OPERATE]
    assert "does not allow operate" in err
    assert client_with(raw_key).post("/api/snapshots/run/").status_code == 403  # not staff


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "ingest,everything"], "Unknown scope"),
        (["--expires-in-days", "0"], "1 or more"),
        (["--name", "  "], "name"),
    ],
)
def test_bad_options_are_refused_and_leave_nothing_behind(args, message):
    with pytest.raises(CommandError, match=message):
        _create("new-bot", *args)

    assert not ApiKey.objects.exists()
    assert not get_user_model().objects.filter(username="new-bot").exists()
