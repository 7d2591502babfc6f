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


def realistic_events(
    *, prefix: str, first_day: dt.date, days: int, per_day: int, late_share: float, seed: int = 1
) -> Iterator[dict[str, Any]]:
    """A feed as it arrives in practice, in arrival order: `per_day` events arriving through
    each day (so about per_day / 24 between two hourly boundaries), most happening a few
    minutes before they arrive, `late_share` of them arriving after their day ended (their
    event time up to 36 hours before the arrival day began, so some land on days already
    snapshotted and a few on days already final)."""
    rng = random.Random(seed)
    start = dt.datetime.combine(first_day, dt.time.min, tzinfo=dt.UTC)
    step = 86_400 / per_day
    for index in range(days * per_day):
        arrival = start + dt.timedelta(seconds=(index + rng.random()) * step)
        day_start = dt.datetime.combine(arrival.date(), dt.time.min, tzinfo=dt.UTC)
        if rng.random() < late_share:
            event_time = day_start - dt.timedelta(seconds=1 + rng.random() * 36 * 3600)
        else:
            since_midnight = (arrival - day_start).total_seconds()
            event_time = arrival - dt.timedelta(seconds=rng.random() * min(since_midnight, 600))
        yield {
            "event_id": f"{prefix}-{index}",
            "event_time": iso_z(event_time),
            "arrival_time": iso_z(arrival),
            "value": f"{rng.randrange(0, 50_000) / 100:.2f}",
            "source": SOURCES[rng.randrange(3)],
        }
