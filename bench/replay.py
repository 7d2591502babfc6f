"""Replay: events/s of `manage.py replay` on a 10^6-event log.

    DATABASE_URL=postgres://... .venv/bin/python -m bench.replay

Writes a CSV log of 10^6 events in arrival order (one week, so about 1,500 events per
15-minute snapshot interval; each arriving shortly after it happened), empties the
benchmark database and runs `manage.py replay LOG --interval 15m` in its own process: the
whole command, reading the file twice (check, then replay), ingest and apply in groups of
up to 1,000, a snapshot run at every interval boundary. Target: >= 20,000 events/s.

    .venv/bin/python -m bench.replay --realistic

The realistic log of issue 16 instead: a year of events (330,000 by default) arriving
through each day, hourly snapshots (8,760 boundaries, ~38 events between two of them),
6.5% of the events arriving after their day ended. Here the per-boundary costs dominate.
Same target. `--days`/`--events` shrink either log for a quick look.

`history_load` (used by bench.snapshot_history) runs the same replay loop in process.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    LOG_DIR,
    BackendCpuSampler,
    Report,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
)
from bench.workload import history_events, realistic_events
from harness.processes import manage_run

TARGET_EVENTS_PER_S = 20_000
HISTORY_DAYS = 3 * 365
LOG_FIELDS = ["event_id", "event_time", "arrival_time", "value", "source"]
REALISTIC = {"events": 330_000, "days": 365, "interval": "1h"}
REALISTIC_LATE_SHARE = 0.065


def history_first_day(days: int = HISTORY_DAYS) -> dt.date:
    """The first day of a history of `days` days that ended three days ago."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3 + days)


@dataclass
class Loaded:
    events: int
    seconds: float


def history_load(events: Iterable[dict[str, Any]], *, interval: dt.timedelta) -> Loaded:
    """Replay generated events (in arrival order) through the replay command's own loop,
    in process, without a file."""
    from snapshots.replay import LogRecord, replay_run

    records = (
        LogRecord(line, dt.datetime.fromisoformat(raw["arrival_time"]), raw)
        for line, raw in enumerate(events, start=2)
    )
    started = time.perf_counter()
    summary = replay_run(records=records, interval=interval)
    return Loaded(summary.accepted, time.perf_counter() - started)


def _write_log(path: Path, *, events: int, days: int, realistic: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days + 1)
    if realistic:
        rows = realistic_events(
            prefix="replay",
            first_day=first_day,
            days=days,
            per_day=max(events // days, 1),
            late_share=REALISTIC_LATE_SHARE,
        )
    else:
        rows = history_events(prefix="replay", count=events, first_day=first_day, days=days)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _run_replay(path: Path, interval: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    output = manage_run("replay", str(path), "--interval", interval, env=env)
    return time.perf_counter() - started, output


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="a year arriving through the day, hourly snapshots, 6.5%% after their day ended",
    )
    parser.add_argument("--events", type=int, help="default 10^6 (330,000 with --realistic)")
    parser.add_argument("--days", type=int, help="time span of the log (7; 365 with --realistic)")
    parser.add_argument("--interval", help="replay's snapshot interval (15m; 1h with --realistic)")
    args = parser.parse_args()
    defaults = REALISTIC if args.realistic else {"events": 1_000_000, "days": 7, "interval": "15m"}
    if args.realistic and args.days is not None and args.events is None:
        args.events = REALISTIC["events"] * args.days // REALISTIC["days"]  # same density
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    database_prepare(database_url, env)
    django_setup()
    data_reset()
    log = LOG_DIR / f"replay-log-{os.getpid()}.csv"  # two runs at once must not share it
    _write_log(log, events=args.events, days=args.days, realistic=args.realistic)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        with BackendCpuSampler() as postgres:
            seconds, output = _run_replay(log, args.interval, env)
    finally:
        log.unlink(missing_ok=True)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = child.ru_utime + child.ru_stime - before.ru_utime - before.ru_stime
    replayed = int(re.search(r"Replayed ([\d,]+) events", output)[1].replace(",", ""))
    own_rate = re.search(r"\(([\d,]+) events/s\)", output)[1]
    runs = re.search(r"snapshot runs\s+([\d,]+)", output)[1]
    rate = replayed / seconds
    report = Report("Replay, realistic log" if args.realistic else "Replay")
    report.figure(
        f"manage.py replay, {replayed:,} events over {args.days} days, --interval {args.interval}",
        f"{rate:,.0f} events/s ({seconds:.1f} s, whole command; it reports {own_rate}/s "
        "for its replay loop)",
        f">= {TARGET_EVENTS_PER_S:,} events/s",
        rate >= TARGET_EVENTS_PER_S,
    )
    report.figure("snapshot runs", runs)
    per_run = 1000 / _number(runs)
    report.figure(
        "CPU per 1,000 events: the replay process / its PostgreSQL backend",
        f"{cpu_seconds * 1000 / (replayed / 1000):.1f} / "
        f"{postgres.seconds * 1000 / (replayed / 1000):.1f} ms",
    )
    report.figure(
        "CPU per snapshot run (boundary): the replay process / its PostgreSQL backend",
        f"{cpu_seconds * per_run:.2f} / {postgres.seconds * per_run:.2f} ms",
    )
    report.figure(
        "ceiling set by PostgreSQL's work alone (events / its CPU seconds: the rate if the "
        "replay process and the round trips cost nothing)",
        f"{replayed / postgres.seconds:,.0f} events/s" if postgres.seconds else "-",
        f">= {TARGET_EVENTS_PER_S:,} events/s",
        replayed / postgres.seconds >= TARGET_EVENTS_PER_S if postgres.seconds else None,
    )
    report.memory(
        [
            ("replay command (manage.py replay)", child.ru_maxrss / 1024),
            ("benchmark process (writes the log)", own_peak_rss_mib()),
        ]
    )
    idle = re.search(r"\(\+([\d,]+) boundaries with nothing to write\)", output)
    if idle:
        report.figure("boundaries with nothing to write (not run)", idle[1])
    kind = (
        f"arriving through each day, {REALISTIC_LATE_SHARE:.1%} after their day ended"
        if args.realistic
        else "each arriving shortly after it happened"
    )
    report.notes += [
        f"Log ({kind}): CSV, {args.events:,} events in arrival order over {args.days} days "
        "(explicit arrival times, decimal strings, three sources), written before the clock "
        "starts; the time is the replay command's, from start to exit, into an emptied "
        "database.",
    ]
    report.emit()


if __name__ == "__main__":
    main()
