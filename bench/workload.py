"""Deterministic synthetic events, shared by the load generator, the raw-insert baseline and
the in-process benchmarks, so every figure of one run is about the same rows."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

SOURCES = ("web", "mobile", "partner")


def iso_z(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_events(
    *, prefix: str, batch_index: int, size: int, now: dt.datetime, spread: dt.timedelta
) -> list[dict[str, Any]]:
    """One request's events: unique ids, times spread over `spread` before `now` (so a batch
    touches a few days, as a real feed does), values as JSON numbers with two decimals."""
    rng = random.Random(f"{prefix}/{batch_index}")
    spread_seconds = spread.total_seconds()
    return [
        {
            "event_id": f"{prefix}-{batch_index}-{index}",
            "event_time": iso_z(now - dt.timedelta(seconds=rng.random() * spread_seconds)),
            "value": rng.randrange(0, 50_000) / 100,
            "source": SOURCES[rng.randrange(3)],
        }
        for index in range(size)
    ]


def history_events(
    *, prefix: str, count: int, first_day: dt.date, days: int, seed: int = 1
) -> Iterator[dict[str, Any]]:
    """`count` events spread evenly over `days` days from `first_day`, each arriving shortly
    after it happened, in arrival order (a replayable log)."""
    rng = random.Random(seed)
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    step = days * 86_400 / count
    for index in range(count):
        event_time = start + dt.timedelta(seconds=index * step + rng.random() * step * 0.5)
        yield {
            "event_id": f"{prefix}-{index}",
            "event_time": iso_z(event_time),
            "arrival_time": iso_z(start + dt.timedelta(seconds=(index + 0.75) * step)),
            "value": f"{rng.randrange(0, 50_000) / 100:.2f}",
            "source": SOURCES[rng.randrange(3)],
        }
