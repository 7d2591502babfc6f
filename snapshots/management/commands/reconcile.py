"""`manage.py reconcile [--metric M] [--from D] [--to D] [--deep]`: recompute every day total from
the stored events and from the contributions; print any drift; exit 1 if there is some."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from aggregation.models import Metric, ReconcileTrigger
from archive.services import archive_files_check
from snapshots.services.reconcile import reconcile_execute


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"{raw!r} is not a date as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Recompute day totals from events and contributions; exit 1 on any drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--metric", help="Only this metric (default: all).")
        parser.add_argument("--from", dest="day_from", type=_date, help="First day (YYYY-MM-DD).")
        parser.add_argument("--to", dest="day_to", type=_date, help="Last day (YYYY-MM-DD).")
        parser.add_argument(
            "--deep",
            action="store_true",
            help="Also re-read every archive file and check it against its manifest.",
        )

    def handle(self, *args: object, **options) -> None:
        metric = None
        if options["metric"]:
            metric = Metric.objects.filter(name=options["metric"]).first()
            if metric is None:
                raise CommandError(f"Unknown metric {options['metric']!r}.")
        run = reconcile_execute(
            now=timezone.now(),
            trigger=ReconcileTrigger.COMMAND,
            metric=metric,
            day_from=options["day_from"],
            day_to=options["day_to"],
        )
        if options["deep"]:
            self._deep(metric)
        if not run.drift_count:
            self.stdout.write(f"Reconcile: {run.days_checked} days checked, no drift.")
            return
        self._table(run.drift)
        shown = "" if len(run.drift) == run.drift_count else f" (first {len(run.drift)} shown)"
        raise CommandError(
            f"Reconcile: {run.drift_count} figures drift over {run.days_checked} days checked"
            f"{shown}; see reconcile run {run.pk} in the admin.",
            returncode=1,
        )

    def _deep(self, metric: Metric | None) -> None:
        checked, problems = archive_files_check(metric=metric)
        for problem in problems:
            self.stdout.write(
                f"{problem.metric} {problem.day} {problem.location}: {problem.detail}"
            )
        if problems:
            raise CommandError(
                f"Reconcile --deep: {len(problems)} of {checked} archive files are wrong.",
                returncode=1,
            )
        self.stdout.write(f"Archive files: {checked} re-read, all match their manifests.")

    def _table(self, drift: list[dict[str, str]]) -> None:
        header = {"metric": "metric", "day": "day", "check": "check", "stored": "stored",
                  "recomputed": "recomputed"}  # fmt: skip
        columns = list(header)
        widths = {c: max(len(str(row[c])) for row in [header, *drift]) for c in columns}
        for row in [header, *drift]:
            self.stdout.write("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())
