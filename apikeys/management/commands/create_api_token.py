"""python manage.py create_api_token <username> [--name N] [--scopes ingest,read,operate]
[--expires-in-days D]: create the user if needed, make a key and print it (only this once)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from apikeys.models import Scope
from apikeys.selectors import api_key_role_scopes
from apikeys.services import api_key_create


class Command(BaseCommand):
    help = (
        "Make a new API key for a user (created if missing) and print it. The key is stored "
        "hashed: this is the only time it is shown."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="default", help="What the key is for.")
        parser.add_argument(
            "--scopes",
            help=(
                f"Comma-separated, from {','.join(Scope.values)}. Default: every scope the "
                "user's role allows (staff: all; viewer group: read; others: ingest,read)."
            ),
        )
        parser.add_argument(
            "--expires-in-days", type=int, help="Refuse the key after this many days."
        )

    @transaction.atomic  # a refused key leaves no new user behind
    def handle(self, *args: object, username: str, **options: object) -> None:
        now = timezone.now()
        user = self._user(username)
        role_scopes = api_key_role_scopes(user=user)
        scopes = _parse_scopes(options["scopes"]) if options["scopes"] else role_scopes
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        expires_at = now + dt.timedelta(days=days) if days is not None else None
        try:
            _, raw_key = api_key_create(
                user=user, name=options["name"], scopes=scopes, expires_at=expires_at, now=now
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        beyond_role = sorted(set(scopes) - set(role_scopes))
        if beyond_role:
            self.stderr.write(
                f"Note: {username!r}'s role does not allow {', '.join(beyond_role)} now; "
                "the key can use it only once it does (e.g. when the user is made staff)."
            )
        self.stdout.write(raw_key)

    def _user(self, username: str) -> object:
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stderr.write(f"Created user {username!r} (API only, no password).")
        return user


def _parse_scopes(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
