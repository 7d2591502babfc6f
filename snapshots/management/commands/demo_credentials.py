"""`manage.py demo_credentials [--wait]`: print this database's demo credentials (written
by `demo_setup`). With --wait, first wait until their site answers with a worker up, so
that under `make run` they come after the servers' start-up output. (The site is the one
`demo_setup --url` recorded: honcho gives each Procfile process its own PORT, so this
process cannot read the web's port from the environment.)"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand, CommandParser

from snapshots.demo_access import demo_access_path, demo_access_read

POLL_SECONDS = 0.5


def site_ready(url: str) -> bool:
    """The site answers its health check and counts at least one live worker."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/health/", timeout=2) as response:
            return json.load(response).get("workers", 0) > 0
    except (OSError, ValueError):  # refused, timed out, an error status, not JSON yet
        return False


class Command(BaseCommand):
    help = "Print the demo credentials of this database (after the site answers, with --wait)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait", action="store_true", help="Wait until their site is up first."
        )
        parser.add_argument("--timeout", type=float, default=120, help="Seconds to wait.")

    def handle(self, *args: object, wait: bool, timeout: float, **options) -> None:
        access = demo_access_read()
        if access is None:
            self.stdout.write(
                f"No demo credentials for this database ({demo_access_path()} is missing or "
                "belongs to another one): run `manage.py demo_setup`."
            )
            return
        note = ""
        if wait and not self._wait(access.site, timeout):
            note = f"(The site at {access.site} had no worker answering after {timeout:g} s.)\n"
        self.stdout.write(f"\n{note}{access.text()}\n")

    def _wait(self, site: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not site_ready(site):
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
        time.sleep(1)  # let the servers' own lines about that check come first
        return True
