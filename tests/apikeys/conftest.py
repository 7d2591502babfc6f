from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from apikeys.selectors import VIEWER_GROUP
from tests.factories import UserFactory


def client_with(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}")


def tables_containing(text: str) -> list[str]:
    """Every table with a row whose text form contains `text`: the whole database
    (PostgreSQL: a row cast to text)."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {quoted} AS t WHERE t::text LIKE %s)",
                [f"%{text}%"],
            )
            if cursor.fetchone()[0]:
                found.append(table)
    return found


@pytest.fixture
def staff_user(db):
    return UserFactory(username="staff", is_staff=True)


@pytest.fixture
def plain_user(db):
    return UserFactory(username="ingest-bot")


@pytest.fixture
def viewer_user(db):
    user = UserFactory(username="viewer")
    user.groups.add(Group.objects.get_or_create(name=VIEWER_GROUP)[0])
    return user
