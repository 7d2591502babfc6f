"""`manage.py restore_archive --metric M --day D`: bring a day's archived events back
into the database (the archive files stay where they are)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aggregation.selectors import metric_get
from archive.services import archive_restore


def _date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"{raw!r} is not a date as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Put the archived raw events of one day back into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--metric", required=True)
        parser.add_argument("--day", required=True, type=_date, help="YYYY-MM-DD")

    def handle(self, *args: object, **options) -> None:
        metric = metric_get(name=options["metric"])
        if metric is None:
            raise CommandError(f"Unknown metric {options['metric']!r}.")
        restored = archive_restore(metric=metric, day=options["day"])
        self.stdout.write(
            f"Restored {restored} events of {metric.name} {options['day']}. While the metric "
            "keeps a raw retention, the next archive run moves them out again."
        )
