"""Reads about API keys: the key behind a request, and what a user's role allows."""

from __future__ import annotations

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import QuerySet

from apikeys.models import ApiKey, Scope, api_key_hash
from common.access import VIEWER_GROUP  # the read-only group, the same for the pages


def user_is_viewer(user: object) -> bool:
    """A read-only user: in the viewer group and not staff (staff operate regardless)."""
    if getattr(user, "is_staff", False):
        return False
    known = getattr(user, "in_viewer_group", None)  # set by ApiKeyAuthentication
    if known is not None:
        return known
    groups = getattr(user, "groups", None)
    return groups is not None and groups.filter(name=VIEWER_GROUP).exists()


def api_key_role_scopes(*, user: object) -> list[str]:
    """Every scope the user's role allows: staff all three, the viewer group read, others
    ingest and read. A key's scopes count only within these (checked on each request)."""
    if getattr(user, "is_staff", False):
        return [Scope.INGEST, Scope.READ, Scope.OPERATE]
    if user_is_viewer(user):
        return [Scope.READ]
    return [Scope.INGEST, Scope.READ]


def api_key_for_request(*, raw_key: str) -> ApiKey | None:
    """The key (usable or not) whose hash matches, with its user and the user's viewer-group
    standing read in the same query: ingest asks that standing on every request.

    Plain SQL built once per process: it runs on every API request, and compiling the
    equivalent ORM query (select_related + an Exists annotation) cost several times more
    CPU than running it.
    """
    sql, key_fields, user_fields = _key_lookup_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [VIEWER_GROUP, api_key_hash(raw_key)])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(key_fields)
    api_key = ApiKey.from_db(connection.alias, key_fields, row[:split])
    user = get_user_model().from_db(connection.alias, user_fields, row[split:-1])
    user.in_viewer_group = row[-1]  # read by user_is_viewer
    api_key._state.fields_cache["user"] = user  # api_key.user without another query
    return api_key


@functools.cache
def _key_lookup_sql() -> tuple[str, list[str], list[str]]:
    user_model = get_user_model()
    key_columns = [(f.attname, f.column) for f in ApiKey._meta.concrete_fields]
    user_columns = [(f.attname, f.column) for f in user_model._meta.concrete_fields]
    memberships = user_model.groups.through
    quote = connection.ops.quote_name
    user_pk = quote(user_model._meta.pk.column)
    member_user = quote(memberships._meta.get_field("user").column)
    member_group = quote(memberships._meta.get_field("group").column)
    sql = (
        "SELECT "
        + ", ".join(
            [f"k.{quote(column)}" for _, column in key_columns]
            + [f"u.{quote(column)}" for _, column in user_columns]
        )
        + f", EXISTS (SELECT 1 FROM {quote(memberships._meta.db_table)} ug"
        f" JOIN {quote(Group._meta.db_table)} g"
        f" ON g.{quote(Group._meta.pk.column)} = ug.{member_group}"
        f" WHERE ug.{member_user} = u.{user_pk} AND g.{quote('name')} = %s)"
        f" FROM {quote(ApiKey._meta.db_table)} k"
        f" JOIN {quote(user_model._meta.db_table)} u"
        f" ON u.{user_pk} = k.{quote(ApiKey._meta.get_field('user').column)}"
        f" WHERE k.{quote(ApiKey._meta.get_field('key_hash').column)} = %s"
    )
    return sql, [a for a, _ in key_columns], [a for a, _ in user_columns]


def api_keys_of_user(*, user: object) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")
