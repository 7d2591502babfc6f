"""`manage.py demo_data --days 30 --seed N [--until T] [--output FILE]`: write the demo
event log (CSV, in arrival order) for `replay`. Same arguments, same file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from aggregation.selectors import reporting_timezone
from events.validation import EventFieldError, parse_instant
from snapshots.demo import demo_events, demo_log_write

DEFAULT_OUTPUT = settings.VAR_DIR / "demo-events.csv"


class Command(BaseCommand):
    help = "Write a deterministic demo event log that tells the late-data story."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--until",
            help="The log's 'now' (ISO time with offset): nothing arrives later. Default: now.",
        )
        parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)

    def handle(self, *args: object, days: int, seed: int, until: str | None, output: Path, **_):
        if days < 1:
            raise CommandError("--days must be at least 1.")
        try:
            end = parse_instant(until, "until") if until else timezone.now()
        except EventFieldError as exc:
            raise CommandError(exc.detail) from None
        events = demo_events(days=days, seed=seed, until=end, tz=reporting_timezone())
        demo_log_write(path=output, events=events)
        span = dt.timedelta(days=days)
        self.stdout.write(
            f"Demo log: {len(events):,} events over {span.days} days (seed {seed}) "
            f"written to {output}."
        )
