"""Writes about API keys: make one (the key is returned once and never stored), revoke it,
note when it was last used."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db.models import Q

from apikeys.models import SCOPE_FIELDS, ApiKey, Scope, api_key_hash

# Marks a string as a snapagg key (for people and secret scanners); the rest is 32 random
# bytes. Keys migrated from DRF's tokens (40 hex digits) have no marker and still work.
KEY_MARKER = "snapagg_"
PREFIX_LENGTH = 8  # random characters kept in clear to tell keys apart
# last_used_at is a "roughly when" for people: writing it on every ingest request would
# cost a row update each time, so it moves at most once per interval.
LAST_USED_INTERVAL = dt.timedelta(minutes=1)


def api_key_create(
    *,
    user: object,
    name: str,
    scopes: Iterable[str],
    expires_at: dt.datetime | None,
    now: dt.datetime,
) -> tuple[ApiKey, str]:
    """Make a key; return it with the raw key, which exists only in this return value."""
    scopes = _checked_scopes(scopes)
    name = name.strip()
    if not name:
        raise ValidationError("A key needs a name.")
    if expires_at is not None and expires_at <= now:
        raise ValidationError("The expiry must be in the future.")
    random_part = secrets.token_urlsafe(32)
    raw_key = KEY_MARKER + random_part
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        key_hash=api_key_hash(raw_key),
        prefix=KEY_MARKER + random_part[:PREFIX_LENGTH],
        created_at=now,
        expires_at=expires_at,
        **{SCOPE_FIELDS[scope]: True for scope in scopes},
    )
    return api_key, raw_key


def _checked_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = set(scopes)
    unknown = chosen - set(Scope.values)
    if unknown:
        raise ValidationError(
            f"Unknown scope(s): {', '.join(sorted(unknown))}; "
            f"the scopes are {', '.join(Scope.values)}."
        )
    if not chosen:
        raise ValidationError("A key needs at least one scope.")
    return [scope for scope in Scope.values if scope in chosen]  # one stable order


def api_key_revoke(*, api_key: ApiKey, now: dt.datetime) -> bool:
    """Revoke the key from now on; False if it was already revoked (the first time stays)."""
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        api_key.revoked_at = now
    return bool(revoked)


def api_key_mark_used(*, api_key: ApiKey, now: dt.datetime) -> None:
    """Note the use, at most once per LAST_USED_INTERVAL per key.

    The key as loaded tells whether an update is due, so most requests write nothing. When
    one is due, the UPDATE repeats the condition: of several workers that see it due at
    once, one writes and the others match no row.
    """
    due_before = now - LAST_USED_INTERVAL
    if api_key.last_used_at is not None and api_key.last_used_at > due_before:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=due_before), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now
