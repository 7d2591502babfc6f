"""The data migration from DRF's tokens: each plain key becomes a hash, the old key keeps
working with the scopes its user's role allowed, and the table of plain keys is dropped."""

from __future__ import annotations

import importlib
import secrets

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from apikeys.models import ApiKey, Scope, api_key_hash
from tests.apikeys.conftest import client_with, tables_containing
from tests.conftest import event

pytestmark = [pytest.mark.django_db]

migration = importlib.import_module("apikeys.migrations.0002_hash_drf_tokens")

# DRF's format, 40 hex digits; made here, since the secrets test refuses them in files.
OLD_KEYS = {username: secrets.token_hex(20) for username in ("staff", "ingest-bot", "viewer")}


@pytest.fixture
def drf_tokens(staff_user, plain_user, viewer_user):
    """authtoken's table and rows as DRF 3.x made them (DDL is transactional: the test's
    rollback removes it again)."""
    users = {"staff": staff_user, "ingest-bot": plain_user, "viewer": viewer_user}
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY,"
            " created timestamp with time zone NOT NULL,"
            " user_id integer NOT NULL UNIQUE REFERENCES auth_user (id))"
        )
        for username, key in OLD_KEYS.items():
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                [key, timezone.now(), users[username].pk],
            )
    MigrationRecorder.Migration.objects.create(app="authtoken", name="0001_initial")
    return users


def _migrate() -> None:
    with connection.schema_editor() as schema_editor:
        migration.hash_drf_tokens(apps, schema_editor)


def test_old_keys_are_hashed_and_keep_working(drf_tokens):
    _migrate()

    staff = client_with(OLD_KEYS["staff"])
    bot = client_with(OLD_KEYS["ingest-bot"])
    viewer = client_with(OLD_KEYS["viewer"])
    assert staff.post("/api/snapshots/run/").status_code == 200
    assert bot.post("/api/events/", event("e1", timezone.now()), format="json").status_code == 202
    assert viewer.get("/api/days/").status_code == 200
    assert (
        viewer.post("/api/events/", event("e2", timezone.now()), format="json").status_code == 403
    )


def test_the_scopes_are_what_each_role_allowed(drf_tokens):
    _migrate()

    scopes = {
        username: ApiKey.objects.get(key_hash=api_key_hash(key)).scopes
        for username, key in OLD_KEYS.items()
    }
    assert scopes == {
        "staff": [Scope.INGEST, Scope.READ, Scope.OPERATE],
        "ingest-bot": [Scope.INGEST, Scope.READ],
        "viewer": [Scope.READ],
    }
    assert set(ApiKey.objects.values_list("name", flat=True)) == {migration.MIGRATED_NAME}


def test_the_plain_keys_are_gone(drf_tokens):
    _migrate()

    assert "authtoken_token" not in connection.introspection.table_names()
    assert not MigrationRecorder.Migration.objects.filter(app="authtoken").exists()
    for key in OLD_KEYS.values():
        assert tables_containing(key) == []


def test_a_database_without_tokens_is_left_alone(plain_user):
    _migrate()  # a fresh database: authtoken was never installed

    assert not ApiKey.objects.exists()
