"""Prepare a local demo: an admin user, an API token and a small data set with late events.

Idempotent: run it again and it only prints the credentials.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"


def _admin_password(username: str) -> str:
    User = get_user_model()
    if CREDENTIALS_FILE.exists() and User.objects.filter(username=username).exists():
        return CREDENTIALS_FILE.read_text().split(":", 1)[1].strip()
    password = secrets.token_urlsafe(12)
    user, _ = User.objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    CREDENTIALS_FILE.parent.mkdir(parents=True, exist_ok=True)
    CREDENTIALS_FILE.write_text(f"{username}:{password}\n")
    CREDENTIALS_FILE.chmod(0o600)
    return password


class Command(BaseCommand):
    help = "Create the demo admin user and API token, and load demo data if the database is empty."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--no-data", action="store_true", help="Skip the demo data.")

    def handle(self, *args: object, username: str, url: str, no_data: bool, **options) -> None:
        password = _admin_password(username)
        token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username=username))
        if not no_data:
            call_command("demo_load", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "snapagg is starting:",
                    f"  site      {url}/",
                    f"  admin     {url}/admin/   user {username}  password {password}",
                    f"  API token {token.key}",
                    f"  try       curl -H 'Authorization: Token {token.key}' {url}/api/days/",
                    "",
                ]
            )
        )
