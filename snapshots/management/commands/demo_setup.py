"""Prepare a local demo: an admin user, an API token, and 30 days of history with late
events, made by writing the demo event log (`demo_data`) and replaying it (`replay`) up to
now, so the first screen shows days provisional, corrected by late data, final, restated.

The credentials are kept per database in var/demo-credentials-<database>.txt (see
snapshots/demo_access.py); `manage.py demo_credentials` prints them again.

Idempotent: run it again and it only prints the credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from events.models import Event
from snapshots.demo import demo_metrics_ensure
from snapshots.demo_access import demo_access_ensure

DEMO_LOG = settings.VAR_DIR / "demo-events.csv"
DEMO_INTERVAL = "2h"


class Command(BaseCommand):
    help = "Create the demo admin user and API token, and load demo data if the database is empty."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--no-data", action="store_true", help="Skip the demo data.")
        parser.add_argument("--days", type=int, default=30, help="Days of demo history.")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: object, username: str, url: str, no_data: bool, **options) -> None:
        access = demo_access_ensure(username=username, site=url, now=timezone.now())
        if not no_data:
            self._demo_history(days=options["days"], seed=options["seed"])
        self.stdout.write(f"\n{access.text()}\n")

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
