"""`manage.py replay FILE [--metric M] [--interval 15m] [--from T] [--to T]`: replay an event
log with a simulated clock through the production services (see snapshots/replay.py).
Prints a summary and, last, the SHA-256 digest of the snapshot table."""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from aggregation.calendar import day_end, day_start
from aggregation.models import Metric
from aggregation.selectors import metric_default, reporting_timezone
from events.validation import EventFieldError, parse_instant
from snapshots.replay import (
    ReplayLogError,
    ReplayRefused,
    ReplaySelection,
    ReplaySummary,
    replay_log_scan,
    replay_run,
)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_interval(raw: str) -> dt.timedelta:
    """15m, 1h, 90s, 1d, or plain seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", raw)
    if not match or int(match[1]) == 0:
        raise CommandError(f"--interval {raw!r}: use a positive duration such as 15m, 1h or 90s.")
    return dt.timedelta(seconds=int(match[1]) * UNITS[match[2] or "s"])


def parse_moment(raw: str, *, end_of_day: bool) -> dt.datetime:
    """An ISO time with an offset, or a day (its start; for --to, its end) in the
    reporting time zone."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        day = dt.date.fromisoformat(raw)
        tz = reporting_timezone()
        return day_end(day, tz) if end_of_day else day_start(day, tz)
    try:
        return parse_instant(raw, "time")
    except EventFieldError as exc:
        raise CommandError(f"{raw!r}: {exc.detail}") from None


class Command(BaseCommand):
    help = (
        "Replay an event log (CSV with a header, or JSON lines; arrival_time required) in "
        "arrival order with a simulated clock, taking a snapshot run at every interval "
        "boundary. Refuses a database that already has events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--metric", help="Only events of this metric.")
        parser.add_argument("--interval", default="15m", help="Snapshot interval (default 15m).")
        parser.add_argument(
            "--from", dest="start", help="Only arrivals from this time (ISO, or a day)."
        )
        parser.add_argument(
            "--to",
            dest="end",
            help="Only arrivals before this time (ISO, or a day: its end); the simulated "
            "clock runs until then. Default: the first boundary after the last arrival.",
        )

    def handle(self, *args: object, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        interval = parse_interval(options["interval"])
        start = parse_moment(options["start"], end_of_day=False) if options["start"] else None
        end = parse_moment(options["end"], end_of_day=True) if options["end"] else None
        if options["metric"] and not Metric.objects.filter(name=options["metric"]).exists():
            raise CommandError(f"Unknown metric {options['metric']!r}; create it first.")
        selection = ReplaySelection(
            default_metric=metric_default().name, metric=options["metric"], start=start, end=end
        )
        try:
            log = replay_log_scan(path=path, selection=selection)
        except ReplayLogError as exc:
            raise CommandError(f"{path}: {exc} Nothing was replayed.") from None
        if not log.in_order:
            self.stderr.write(
                f"{path}: not in arrival order; sorting {log.count} events in memory."
            )
        started = time.perf_counter()
        with tqdm(
            total=log.count, unit="ev", disable=not sys.stderr.isatty(), dynamic_ncols=True
        ) as bar:

            def progress(events: int, simulated: dt.datetime) -> None:
                bar.set_postfix_str(f"simulated {simulated:%Y-%m-%d %H:%M}", refresh=False)
                bar.update(events)

            try:
                summary = replay_run(
                    records=log.records(),
                    interval=interval,
                    start=start,
                    until=end,
                    on_progress=progress,
                )
            except ReplayRefused as exc:
                raise CommandError(str(exc)) from None
        self._report(summary, interval, time.perf_counter() - started)

    def _report(self, summary: ReplaySummary, interval: dt.timedelta, seconds: float) -> None:
        span = "nothing"
        if summary.simulated_from and summary.simulated_to:
            first, last = summary.simulated_from, summary.simulated_to
            span = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
        rate = summary.events / seconds if seconds > 0 else 0
        lines = [
            f"Replayed {summary.events:,} events in {summary.batches:,} batches, "
            f"snapshot every {interval}, simulated {span}, in {seconds:.1f} s "
            f"({rate:,.0f} events/s).",
            f"  accepted                 {summary.accepted:>10,}",
            f"  duplicates               {summary.duplicates:>10,}",
            f"  conflicts                {summary.conflicts:>10,}  (recorded, not counted)",
            f"  rejected                 {summary.rejected:>10,}",
            f"  late                     {summary.late:>10,}  (changed a day that had a snapshot)",
            f"  too late, counted        {summary.too_late_counted:>10,}  (restatements)",
            f"  too late, held           {summary.quarantined:>10,}  (quarantine)",
            f"  snapshot runs            {summary.snapshot_runs:>10,}  "
            f"(+{summary.idle_boundaries:,} boundaries with nothing to write)",
            f"  snapshots written        {summary.snapshots_written:>10,}",
        ]
        lines += [f"  rejected: {rejection}" for rejection in summary.rejections]
        lines.append(f"digest sha256:{summary.digest}")
        self.stdout.write("\n".join(lines))
