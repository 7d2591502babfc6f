"""Snapshot run vs history: is a run's cost independent of how many events are stored?

    DATABASE_URL=postgres://... .venv/bin/python -m bench.snapshot_history

For 10^4, 10^5 and 10^6 stored events (three years of days, loaded through the services
with a daily snapshot run, so every old day is final), 10 days then change (100 late events
from 50 sources on each of 10 days spread over the history, one batch: issue 16's "10
changed days of 50 sources each", which matters once snapshots keep per-source slices), and
the snapshot job runs: the
milliseconds of that run, and of a run with nothing changed, each the median of several
rounds. Target: the run at 10^6 events <= 1.2 x the run at 10^4 (10 changed days each).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from bench.common import (
    Report,
    Table,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    postgres_backend_peaks,
    vacuum_analyze,
)
from bench.replay import HISTORY_DAYS, history_first_day, history_load
from bench.workload import iso_z

TARGET_RATIO = 1.2
CHANGED_DAYS = 10
EVENTS_PER_CHANGED_DAY = 100
SOURCES_PER_CHANGED_DAY = 50


def _change_days(round_index: int, clock: dt.datetime, days: int) -> None:
    """One batch of late events on CHANGED_DAYS days spread over the history."""
    from events.models import IngestChannel
    from events.services.apply import batch_apply
    from events.services.ingest import events_ingest

    first_day = history_first_day(days)
    stride = days // CHANGED_DAYS
    events = [
        {
            "event_id": f"late-{round_index}-{day_index}-{n}",
            "event_time": iso_z(
                dt.datetime.combine(
                    first_day + dt.timedelta(days=day_index * stride + round_index),
                    dt.time(12),
                    tzinfo=dt.UTC,
                )
            ),
            "value": "1.50",
            "source": f"source-{n % SOURCES_PER_CHANGED_DAY}",
        }
        for day_index in range(CHANGED_DAYS)
        for n in range(EVENTS_PER_CHANGED_DAY)
    ]
    result = events_ingest(
        raw_events=events, received_at=clock, channel=IngestChannel.API, enqueue=False
    )
    batch_apply(batch_id=result.batch_id, now=clock)


def _timed_run(clock: dt.datetime) -> tuple[float, int, int]:
    """Milliseconds, days snapshotted and statements of one snapshot run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from snapshots.models import RunTrigger
    from snapshots.services.run import snapshot_run_execute

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        run = snapshot_run_execute(now=clock, trigger=RunTrigger.MANUAL)
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, run.days_snapshotted, len(queries.captured_queries)


def measure(events: int, rounds: int, days: int) -> dict[str, float]:
    from events.models import Event

    data_reset()
    # A snapshot run every simulated day: every old day is final, as in a real history.
    loaded = history_load(_history(events, days), interval=dt.timedelta(days=1))
    clock = dt.datetime.combine(
        history_first_day(days) + dt.timedelta(days=days + 2), dt.time(), tzinfo=dt.UTC
    )
    _timed_run(clock)  # the last days turn final
    vacuum_analyze()
    changed, idle, statements = [], [], set()
    for round_index in range(rounds):
        clock += dt.timedelta(minutes=5)
        _change_days(round_index, clock, days)
        clock += dt.timedelta(minutes=5)
        elapsed, written, count = _timed_run(clock)
        if written != CHANGED_DAYS:
            raise RuntimeError(f"the run wrote {written} days, not {CHANGED_DAYS}")
        changed.append(elapsed)
        statements.add(count)
        clock += dt.timedelta(minutes=5)
        idle.append(_timed_run(clock)[0])
    return {
        "events": events,
        "stored": Event.objects.count(),
        "load_rate": loaded.events / loaded.seconds,
        "changed_ms": statistics.median(changed),
        "idle_ms": statistics.median(idle),
        "statements": max(statements),
    }


def _history(count: int, days: int):
    from bench.workload import history_events

    return history_events(
        prefix=f"h{count}", count=count, first_day=history_first_day(days), days=days
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--days", type=int, default=HISTORY_DAYS, help="length of the history")
    args = parser.parse_args()
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    database_prepare(database_url, env)
    django_setup()
    results = [measure(size, args.rounds, args.days) for size in args.sizes]
    smallest, largest = results[0], results[-1]
    ratio = largest["changed_ms"] / smallest["changed_ms"]
    report = Report("Snapshot run vs history")
    for result in results:
        report.figure(
            f"{result['events']:,} stored events: run with {CHANGED_DAYS} changed days "
            f"x {SOURCES_PER_CHANGED_DAY} sources",
            f"{result['changed_ms']:.1f} ms (nothing changed: {result['idle_ms']:.1f} ms; "
            f"{result['statements']} statements)",
        )
    report.figure(
        f"ratio {largest['events']:,} / {smallest['events']:,} events",
        f"{ratio:.2f}",
        f"<= {TARGET_RATIO}",
        ratio <= TARGET_RATIO,
    )
    report.tables.append(
        Table(
            "History loading (the replay loop in process, a snapshot run every simulated day)",
            ["history", "events/s", "stored at the end (with the late events)"],
            [[f"{r['events']:,}", f"{r['load_rate']:,.0f}", f"{r['stored']:,}"] for r in results],
        )
    )
    report.memory(
        [("benchmark process", own_peak_rss_mib())]
        + [(f"PostgreSQL backend {i + 1}", p) for i, p in enumerate(postgres_backend_peaks())]
    )
    report.notes += [
        f"History: {args.days} days ending three days ago, every day final; each round "
        f"adds {EVENTS_PER_CHANGED_DAY} late events on each of {CHANGED_DAYS} days spread over "
        f"the history (restatements), then times snapshot_run_execute; median of "
        f"{args.rounds} rounds. VACUUM ANALYZE and a CHECKPOINT after loading, as autovacuum "
        "and the checkpointer would have.",
    ]
    report.emit()


if __name__ == "__main__":
    main()
