"""Fixtures for replay and demo tests: small event logs written to files, and a way to
replay into a database that is fresh each time."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from tests.factories import MetricFactory

DAY0 = dt.date(2026, 11, 2)
HOUR = dt.timedelta(hours=1)
LOG_COLUMNS = ["event_id", "event_time", "arrival_time", "value", "metric", "source"]
LATENESS = [
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=10),
    dt.timedelta(hours=3),
    dt.timedelta(hours=20),
    dt.timedelta(hours=30),
]


def story_events(*, days: int = 3, per_day: int = 40, seed: int = 1) -> list[dict[str, Any]]:
    """Events of a few days: on time, minutes and hours late, some past the allowed
    lateness (restated under `default`, held under `held`), a duplicate and a conflict."""
    rng = random.Random(seed)
    events = []
    for d in range(days):
        start = dt.datetime.combine(DAY0 + dt.timedelta(days=d), dt.time.min, tzinfo=dt.UTC)
        for n in range(per_day):
            event_time = start + dt.timedelta(seconds=rng.randrange(86_400))
            events.append(
                {
                    "event_id": f"d{d}-{n}",
                    "event_time": event_time,
                    "arrival_time": event_time + rng.choice(LATENESS),
                    "value": rng.choice(["1.50", "2", "10.25", "0.000001"]),
                    "metric": "held" if n % 5 == 0 else "",
                    "source": rng.choice(["web", "mobile", "partner"]),
                }
            )
    duplicate = {**events[3], "arrival_time": events[3]["arrival_time"] + dt.timedelta(hours=1)}
    conflict = {**events[4], "value": "999", "arrival_time": events[4]["arrival_time"] + HOUR * 2}
    return [*events, duplicate, conflict]


def by_arrival(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["arrival_time"], e["event_id"]))


def _text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def write_log(path: Path, events: list[dict[str, Any]]) -> Path:
    """CSV for *.csv, JSON lines otherwise; rows in the order given."""
    with path.open("w", newline="") as handle:
        if path.suffix == ".csv":
            writer = csv.writer(handle)
            writer.writerow(LOG_COLUMNS)
            writer.writerows([_text(e.get(c, "")) for c in LOG_COLUMNS] for e in events)
        else:
            for e in events:
                row = {k: _text(v) for k, v in e.items() if v != ""}
                handle.write(json.dumps(row) + "\n")
    return path


class _Rollback(Exception):
    pass


def replay_fresh(
    path: Path, *, collect: Callable[[], None] | None = None, **options: Any
) -> list[str]:
    """Run `manage.py replay` and roll everything back afterwards, so each call starts
    from the same empty database. Returns the printed lines (the digest is the last);
    `collect` runs before the rollback, to look at what the replay stored."""
    out = StringIO()
    try:
        with transaction.atomic():
            call_command("replay", str(path), stdout=out, stderr=StringIO(), **options)
            if collect is not None:
                collect()
            raise _Rollback
    except _Rollback:
        pass
    return out.getvalue().strip().splitlines()


@pytest.fixture
def held_metric(db):
    return MetricFactory(
        name="held", too_late_policy="quarantine", allowed_lateness=dt.timedelta(hours=6)
    )


@pytest.fixture
def story_log(tmp_path: Path, held_metric) -> Path:
    return write_log(tmp_path / "story.csv", by_arrival(story_events()))
