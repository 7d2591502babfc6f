"""The admin makes a key and shows it once (on the page after saving, stored nowhere),
lists keys without their secrets, and revokes them."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apikeys.models import ApiKey, Scope, api_key_hash
from tests.apikeys.conftest import client_with, tables_containing
from tests.factories import api_key_for

pytestmark = pytest.mark.django_db

RAW_KEY = re.compile(r"snapagg_[A-Za-z0-9_-]{43}")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


def _add(admin_client, user, **fields) -> str:
    form = {"user": user.pk, "name": "from the admin", "expires_at_0": "", "expires_at_1": ""}
    page = admin_client.post(reverse("admin:apikeys_apikey_add"), {**form, **fields})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    return RAW_KEY.search(page.content.decode()).group()


def test_adding_a_key_shows_it_once_and_stores_only_its_hash(admin_client, plain_user):
    raw_key = _add(admin_client, plain_user, scope_read="on")

    api_key = ApiKey.objects.get(key_hash=api_key_hash(raw_key))
    assert (api_key.user, api_key.name, api_key.scopes) == (plain_user, "from the admin", ["read"])
    assert tables_containing(raw_key) == []  # not in the session or admin log either
    assert client_with(raw_key).get("/api/days/").status_code == 200
    change_page = admin_client.get(reverse("admin:apikeys_apikey_change", args=[api_key.pk]))
    assert raw_key not in change_page.content.decode()


def test_no_scope_ticked_gives_the_roles_scopes(admin_client, viewer_user):
    raw_key = _add(admin_client, viewer_user)

    assert ApiKey.objects.get(key_hash=api_key_hash(raw_key)).scopes == [Scope.READ]


def test_the_revoke_action_stops_the_keys(admin_client, plain_user):
    raw_key = api_key_for(plain_user)
    api_key = ApiKey.objects.get(key_hash=api_key_hash(raw_key))

    admin_client.post(
        reverse("admin:apikeys_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert client_with(raw_key).get("/api/days/").status_code == 401


def test_the_list_shows_name_user_scopes_and_no_secret(admin_client, plain_user):
    raw_key = api_key_for(plain_user)

    page = admin_client.get(reverse("admin:apikeys_apikey_changelist")).content.decode()

    assert "ingest-bot" in page
    assert "ingest, read" in page
    assert raw_key not in page
    assert api_key_hash(raw_key) not in page
