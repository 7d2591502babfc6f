"""Prepare a local demo: an admin user, an API token, and 30 days of history with late
events, made by writing the demo event log (`demo_data`) and replaying it (`replay`) up to
now, so the first screen shows days provisional, corrected by late data, final, restated.

Idempotent: run it again and it only prints the credentials.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from apikeys.selectors import api_key_role_scopes
from apikeys.services import api_key_create
from events.models import Event
from snapshots.demo import demo_metrics_ensure

CREDENTIALS_FILE = settings.VAR_DIR / "demo-credentials.txt"
DEMO_LOG = settings.VAR_DIR / "demo-events.csv"
DEMO_INTERVAL = "2h"


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
        parser.add_argument("--days", type=int, default=30, help="Days of demo history.")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: object, username: str, url: str, no_data: bool, **options) -> None:
        password = _admin_password(username)
        user = get_user_model().objects.get(username=username)
        _, api_key = api_key_create(
            user=user,
            name="demo",
            scopes=api_key_role_scopes(user=user),
            expires_at=None,
            now=timezone.now(),
        )
        if not no_data:
            self._demo_history(days=options["days"], seed=options["seed"])
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "snapagg is starting:",
                    f"  site      {url}/",
                    f"  admin     {url}/admin/   user {username}  password {password}",
                    f"  API key   {api_key}   (shown once: only its hash is stored)",
                    f"  try       curl -H 'Authorization: Token {api_key}' {url}/api/days/",
                    "",
                ]
            )
        )

    def _demo_history(self, *, days: int, seed: int) -> None:
        if Event.objects.exists():
            self.stdout.write("Demo data: the database already has events; nothing loaded.")
            return
        demo_history_load(
            days=days, seed=seed, log_path=DEMO_LOG, stdout=self.stdout, stderr=self.stderr
        )


def demo_history_load(*, days: int, seed: int, log_path: Path, stdout: Any, stderr: Any) -> None:
    """Write the demo event log up to now, replay it, and check the result with a reconcile
    (so the operations page has one to show), as `make run` does."""
    demo_metrics_ensure()
    now = timezone.now().isoformat()
    streams = {"stdout": stdout, "stderr": stderr}
    call_command("demo_data", days=days, seed=seed, until=now, output=log_path, **streams)
    call_command("replay", str(log_path), interval=DEMO_INTERVAL, end=now, **streams)
    call_command("reconcile", **streams)
