"""`manage.py archive [--metric M] [--dry-run]`: run the archive job now (the nightly
schedule does the same); a progress bar on a terminal."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from aggregation.selectors import metric_get
from archive.models import ArchiveTrigger
from archive.services import ArchiveRunBusy, DayOutcome, archive_run_execute


class Command(BaseCommand):
    help = "Move the raw events of old, final, snapshotted days to archive files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--metric", help="Only this metric (default: every metric).")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be archived; change nothing."
        )

    def handle(self, *args: object, **options) -> None:
        metric = None
        if options["metric"]:
            metric = metric_get(name=options["metric"])
            if metric is None:
                raise CommandError(f"Unknown metric {options['metric']!r}.")
        bar = tqdm(total=0, unit="day", disable=not sys.stderr.isatty(), file=sys.stderr)
        dry = options["dry_run"]

        def on_day(outcome: DayOutcome) -> None:
            bar.update(1)
            day = f"{outcome.day_total.metric.name} {outcome.day_total.day}"
            if dry:
                self.stdout.write(f"would archive {day}: {outcome.events} events")
            elif outcome.skipped:
                self.stdout.write(f"left {day} in the database: {outcome.skipped}")

        def on_days(count: int) -> None:
            bar.reset(total=count)

        try:
            run = archive_run_execute(
                now=timezone.now(),
                trigger=ArchiveTrigger.COMMAND,
                metric=metric,
                dry_run=dry,
                on_day=on_day,
                on_days=on_days,
            )
        except ArchiveRunBusy:
            raise CommandError("Another archive run holds the lock; try again later.") from None
        finally:
            bar.close()
        verb = "would archive" if dry else "archived"
        self.stdout.write(
            f"Archive run {run.pk}: {verb} {run.events} events of {run.days} days "
            f"({run.bytes} bytes in {run.files_written} files)."
        )
        if run.error:
            raise CommandError(f"Some days were left in the database:\n{run.error}", returncode=1)
