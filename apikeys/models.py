"""API keys: several per user, named and scoped, stored only as a SHA-256 hash.

A fast hash is the right one here, unlike for passwords: a key is 256 random bits (a
migrated DRF token, 160), so there is nothing to guess and nothing for a slow hasher's work
factor to protect, while PBKDF2 would cost ~100 ms on every request. The hash is looked
up through its unique index: one indexed query per request, as before.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    INGEST = "ingest", "ingest: post events"
    READ = "read", "read: every GET"
    OPERATE = "operate", "operate: snapshot and archive runs, metric changes"


SCOPE_FIELDS = {
    Scope.INGEST: "scope_ingest",
    Scope.READ: "scope_read",
    Scope.OPERATE: "scope_operate",
}


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. “shop ingest”.")
    key_hash = models.CharField(
        max_length=64, unique=True, editable=False, help_text="SHA-256 of the key, in hex."
    )
    prefix = models.CharField(
        max_length=16,
        editable=False,
        help_text="The key's first characters, to tell keys apart; not enough to use it.",
    )
    # One column per scope (not an array): the same on PostgreSQL and SQLite, and each one
    # a checkbox and a filter in the admin.
    scope_ingest = models.BooleanField("ingest", default=False, help_text="POST /api/events/.")
    scope_read = models.BooleanField("read", default=False, help_text="Every GET.")
    scope_operate = models.BooleanField(
        "operate",
        default=False,
        help_text="Snapshot and archive runs, metric changes (a staff user's keys only).",
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Refused from this time on; empty: never expires."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Updated at most once a minute."
    )

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scopes(self) -> list[str]:
        return [scope for scope, field in SCOPE_FIELDS.items() if getattr(self, field)]

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def refusal(self, *, now: dt.datetime) -> str | None:
        """Why this key may not be used at `now`, or None when it may."""
        if self.revoked_at is not None:
            return "This API key was revoked."
        if self.expires_at is not None and self.expires_at <= now:
            return "This API key has expired."
        return None
