"""Load a small, deterministic demo history through the production services, with a
simulated clock: events arrive (some hours late, one a day late, a duplicate, a conflict)
and snapshots are taken every few simulated hours, so days show provisional values being
corrected by late data and then turning final."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from aggregation.calendar import day_start
from aggregation.models import Metric, TooLatePolicy
from aggregation.selectors import reporting_timezone
from events.models import Event, IngestBatch, IngestChannel
from events.services import batch_apply, events_ingest
from snapshots.models import RunTrigger
from snapshots.services import snapshot_run_execute

SNAPSHOT_EVERY = dt.timedelta(hours=3)


def _demo_events(days: int, now: dt.datetime, rng: random.Random) -> Iterator[dict]:
    tz = reporting_timezone()
    today = now.astimezone(tz).date()
    for offset in range(days, -1, -1):
        start = day_start(today - dt.timedelta(days=offset), tz)
        for n in range(rng.randint(30, 50)):
            event_time = start + dt.timedelta(seconds=rng.randint(0, 86_399))
            source = rng.choices(["web", "mobile", "partner"], weights=[6, 3, 1])[0]
            delay = {
                "web": dt.timedelta(seconds=rng.randint(1, 30)),
                "mobile": dt.timedelta(minutes=rng.choice([1, 5, 30, 240, 600, 1500])),
                "partner": start + dt.timedelta(days=1, hours=6) - event_time,
            }[source]
            arrival = event_time + delay
            if arrival > now:
                continue
            yield {
                "event_id": f"demo-{offset}-{n}",
                "event_time": event_time.isoformat(),
                "arrival_time": arrival.isoformat(),
                "value": str(rng.choice([5, 10, 12.5, 20, 49.99])),
                "source": source,
                "metric": rng.choices(["default", "signups"], weights=[4, 1])[0],
            }


class Command(BaseCommand):
    help = "Load a small demo history (skipped when the database already has events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=6)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: object, days: int, seed: int, **options: object) -> None:
        if Event.objects.exists():
            self.stdout.write("Demo data: the database already has events; nothing loaded.")
            return
        Metric.objects.get_or_create(
            name="signups",
            defaults={
                "description": "Sign-ups (too-late events are held for review).",
                "allowed_lateness": dt.timedelta(hours=12),
                "too_late_policy": TooLatePolicy.QUARANTINE,
            },
        )
        now = timezone.now()
        rng = random.Random(seed)
        events = sorted(_demo_events(days, now, rng), key=lambda e: e["arrival_time"])
        events += [dict(events[3]), {**events[5], "value": "999"}]  # a duplicate, a conflict
        clock = dt.datetime.fromisoformat(events[0]["arrival_time"]).replace(
            minute=0, second=0, microsecond=0
        )
        runs = 0
        for event in events:
            arrival = dt.datetime.fromisoformat(event["arrival_time"])
            while clock + SNAPSHOT_EVERY <= arrival:
                clock += SNAPSHOT_EVERY
                snapshot_run_execute(now=clock, trigger=RunTrigger.REPLAY)
                runs += 1
            result = events_ingest(
                raw_events=[event], received_at=arrival, channel=IngestChannel.DEMO, enqueue=False
            )
            if result.batch_id and result.accepted:
                batch_apply(batch_id=result.batch_id, now=arrival)
        snapshot_run_execute(now=now, trigger=RunTrigger.REPLAY)
        self.stdout.write(
            f"Demo data: {len(events)} events in {IngestBatch.objects.count()} batches, "
            f"{runs + 1} snapshot runs."
        )
