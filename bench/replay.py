"""Replay: events/s through the services the replay command uses.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.replay

A 10^6-event log (three years, in arrival order) goes through `events_ingest(enqueue=False)`
and `batch_apply` in batches of 1,000, with `snapshot_run_execute` at every simulated
snapshot interval the log crosses (default: one day), on a simulated clock: the loop of a
replay command. The log is generated in memory, so reading and parsing a file is not
measured. Target: >= 20,000 events/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bench.common import (
    CpuMeter,
    Report,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    postgres_backend_peaks,
)
from bench.workload import history_events

TARGET_EVENTS_PER_S = 20_000
HISTORY_DAYS = 3 * 365


@dataclass
class ReplayResult:
    events: int
    batches: int
    snapshot_runs: int
    snapshots: int
    seconds: float
    clock: dt.datetime


def _batches(events: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(events)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def replay(
    events: Iterable[dict[str, Any]], *, batch_size: int, snapshot_every: dt.timedelta
) -> ReplayResult:
    """Replay a log in arrival order, as the replay command does: each batch is received
    at the arrival time of its last event, applied, and the snapshot job runs at every
    interval boundary the clock passes."""
    from events.models import IngestChannel
    from events.services import batch_apply, events_ingest
    from snapshots.models import RunTrigger
    from snapshots.services import snapshot_run_execute

    started = time.perf_counter()
    result = ReplayResult(0, 0, 0, 0, 0.0, dt.datetime.min.replace(tzinfo=dt.UTC))
    next_run: dt.datetime | None = None
    for batch in _batches(events, batch_size):
        received_at = dt.datetime.fromisoformat(batch[-1]["arrival_time"])
        if next_run is None:
            next_run = received_at + snapshot_every
        while next_run <= received_at:
            run = snapshot_run_execute(now=next_run, trigger=RunTrigger.REPLAY)
            result.snapshot_runs += 1
            result.snapshots += run.days_snapshotted
            next_run += snapshot_every
        ingested = events_ingest(
            raw_events=batch, received_at=received_at, channel=IngestChannel.REPLAY, enqueue=False
        )
        if ingested.batch_id and ingested.accepted:
            batch_apply(batch_id=ingested.batch_id, now=received_at)
        result.events += ingested.accepted
        result.batches += 1
        result.clock = received_at
    result.seconds = time.perf_counter() - started
    return result


def history_first_day(days: int = HISTORY_DAYS) -> dt.date:
    """The first day of a history of `days` days that ended three days ago."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3 + days)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--snapshot-every-hours", type=float, default=24.0)
    parser.add_argument("--days", type=int, default=HISTORY_DAYS, help="length of the log")
    args = parser.parse_args()
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    database_prepare(database_url, env)
    django_setup()
    data_reset()
    every = dt.timedelta(hours=args.snapshot_every_hours)
    log = history_events(
        prefix=f"r{int(time.time())}",
        count=args.events,
        first_day=history_first_day(args.days),
        days=args.days,
    )
    with CpuMeter() as cpu:
        result = replay(log, batch_size=args.batch, snapshot_every=every)
    rate = result.events / result.seconds
    report = Report("Replay")
    report.figure(
        f"replay of {result.events:,} events ({args.days} days, batches of {args.batch:,})",
        f"{rate:,.0f} events/s ({result.seconds:.1f} s)",
        f">= {TARGET_EVENTS_PER_S:,} events/s",
        rate >= TARGET_EVENTS_PER_S,
    )
    report.figure(
        f"snapshot runs (every {args.snapshot_every_hours:g} simulated hours)",
        f"{result.snapshot_runs:,} runs, {result.snapshots:,} snapshots",
    )
    thousands = result.events / 1000
    report.figure(
        "CPU per 1,000 events: replay process / PostgreSQL backend",
        f"{cpu.own * 1000 / thousands:.1f} / {cpu.backend * 1000 / thousands:.1f} ms",
    )
    report.memory(
        [("benchmark process (replay loop)", own_peak_rss_mib())]
        + [(f"PostgreSQL backend {i + 1}", p) for i, p in enumerate(postgres_backend_peaks())]
    )
    report.notes += [
        "In process, through the services the replay command calls: events_ingest("
        "enqueue=False), batch_apply, snapshot_run_execute, on a simulated clock.",
        "The log is generated in memory (decimal strings, explicit arrival times): reading "
        "and parsing a file is not measured.",
    ]
    report.emit()


if __name__ == "__main__":
    main()
