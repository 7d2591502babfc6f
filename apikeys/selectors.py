"""Reads about API keys: the key behind a request, and what a user's role allows."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, QuerySet

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
    standing read in the same query: ingest asks that standing on every request."""
    in_viewer_group = Group.objects.filter(user=OuterRef("user_id"), name=VIEWER_GROUP)
    try:
        api_key = (
            ApiKey.objects.select_related("user")
            .annotate(user_in_viewer_group=Exists(in_viewer_group))
            .get(key_hash=api_key_hash(raw_key))
        )
    except ApiKey.DoesNotExist:
        return None
    api_key.user.in_viewer_group = api_key.user_in_viewer_group  # read by user_is_viewer
    return api_key


def api_keys_of_user(*, user: object) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at")
