"""Ingest end to end, against raw PostgreSQL in the same run.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python -m bench.ingest

Starts the production stack on a database of its own (<DATABASE_URL name>_bench) and a
queue of its own on the given Redis: gunicorn with 2 workers and one Celery worker, as in
the Procfile. A separate load-generator process posts unique events (batches of 1,000,
then of 100) over a few connections as fast as they are answered. Measured: accepted
events/s (first send to last 202), applied events/s (first send until every day total is
right), ack latency p50/p99; then ack latency of 1,000-event batches sent on a schedule at
half the peak rate. In the same run, the same rows go into a scratch table with the same
columns and indexes through raw psycopg (`INSERT ... SELECT FROM unnest(binary arrays) ON
CONFLICT (event_id) DO NOTHING`, 1,000 rows per statement, one connection): the ratio of
the two is the figure that matters on a shared or different machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psutil

from bench.common import (
    LOG_DIR,
    ROOT,
    FsyncProbe,
    Profiler,
    Report,
    Table,
    api_token,
    backend_cpu_seconds,
    data_reset,
    own_peak_rss_mib,
    percentile,
    postgres_backend_peaks,
    redis_stack_prepare,
    same_device_as_postgres,
    stack_peaks,
    stack_python_pids,
    stack_start,
)
from bench.workload import batch_events
from harness.processes import Stack
from harness.waiting import wait_until

SPREAD = dt.timedelta(hours=48)  # each batch touches about three days
# Issue 16's targets: applied >= 60% / 25% of raw for 1,000- / 100-event batches (10: only
# reported), ack p99 < 50 ms (1,000 at half peak; 100 at peak), many-day batches >= 0.8x
# the few-day rate.
TARGET_RATIOS = {1000: 0.60, 100: 0.25, 10: None}
TARGET_P99_MS = 50.0
LOADGEN = "load generator"  # its column in the CPU table
SPAN_FEW = dt.timedelta(days=10)
SPAN_MANY = dt.timedelta(days=3 * 365)  # a backfill: each batch over three years of days
TARGET_SPAN_RATIO = 0.8
RAW_BATCH = 1000


@dataclass
class Phase:
    label: str
    batch: int
    requests: int
    accepted: int
    accepted_per_s: float
    applied_per_s: float | None
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    cpu_ms_per_1000: dict[str, float]
    loadgen_peak_mib: float
    fsync_ms: list[float]  # the disk probe's flushes during the phase, sorted


def _stack_cpu(stack: Stack) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, process in stack.processes().items():
        group = "web (gunicorn)" if name == "web" else "Celery"
        for member in [psutil.Process(process.pid), *process.children()]:
            times = member.cpu_times()
            totals[group] = totals.get(group, 0.0) + times.user + times.system
    return totals


def _cpu_snapshot(stack: Stack) -> dict[str, Any]:
    return {"stack": _stack_cpu(stack), "postgres": backend_cpu_seconds()}


def _cpu_spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    spent = {name: after["stack"][name] - before["stack"].get(name, 0.0) for name in after["stack"]}
    spent["PostgreSQL backends"] = sum(
        seconds - before["postgres"].get(pid, 0.0) for pid, seconds in after["postgres"].items()
    )
    return spent


def _applied_events() -> int:
    from django.db.models import Sum

    from aggregation.models import DayTotal

    return DayTotal.objects.aggregate(total=Sum("event_count"))["total"] or 0


def _last_applied_at() -> float:
    from django.db.models import Max

    from aggregation.models import DayTotal

    return DayTotal.objects.aggregate(last=Max("last_applied_at"))["last"].timestamp()


def _load(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def _checkpoint() -> None:
    """A checkpoint now, before a phase: the earlier phases' writes (the raw baseline's
    included) otherwise trigger one by WAL volume at a moment of their choosing, often inside
    the next phase, whose p99 then measures the checkpoint."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:  # a role without the right (superuser or pg_checkpoint): go on
        pass


def _run_phase(
    stack: Stack, *, label: str, spec: dict[str, Any], applied_before: int, wait_applied: bool
) -> Phase:
    _checkpoint()
    before = _cpu_snapshot(stack)
    with FsyncProbe(LOG_DIR) as disk:
        result = _load({**spec, "url": f"{stack.base_url}/api/events/"})
    applied_per_s = None
    if wait_applied:
        expected = applied_before + result["accepted"]
        wait_until(
            lambda: _applied_events() >= expected,
            300,
            "every batch applied",
            stack.processes().values(),
        )
        applied_per_s = result["accepted"] / (_last_applied_at() - result["started_at"])
    spent = _cpu_spent(before, _cpu_snapshot(stack))
    spent[LOADGEN] = result["cpu_seconds"]
    thousands = max(result["accepted"], 1) / 1000
    latencies = result["latencies_ms"]
    return Phase(
        label=label,
        batch=spec["batch"],
        requests=result["requests"],
        accepted=result["accepted"],
        accepted_per_s=result["accepted"] / result["duration"],
        applied_per_s=applied_per_s,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        statuses=result["statuses"],
        cpu_ms_per_1000={name: seconds * 1000 / thousands for name, seconds in spent.items()},
        loadgen_peak_mib=result["peak_rss_kib"] / 1024,
        fsync_ms=sorted(disk.latencies_ms),
    )


def _warm_up(stack: Stack, token: str, requests: int = 12) -> None:
    """Let each web worker load the URL configuration and views, and open its connections,
    before anything is measured: the first request a gunicorn worker serves imports them
    (about a second of CPU), which otherwise lands in the first phase's p99. Stores nothing:
    a lookup of an unknown event and a post whose only event is invalid."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(stack.base_url)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    for _ in range(requests):
        for method, path, body in (
            ("GET", "/api/events/warm-up-unknown/", None),
            ("POST", "/api/events/", b"{}"),
        ):
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            connection.request(method, path, body=body, headers=headers)
            connection.getresponse().read()
            connection.close()


# --- Raw PostgreSQL baseline ----------------------------------------------------------------

_RAW_INSERT = """
INSERT INTO bench_raw_events
    (event_id, metric_id, day, day_total_id, event_time, arrival_time, value, source, batch_id)
SELECT e.*, 1
FROM unnest(%b::text[], %b::bigint[], %b::date[], %b::bigint[], %b::timestamptz[],
            %b::timestamptz[], %b::numeric[], %b::text[])
     AS e(event_id, metric_id, day, day_total_id, event_time, arrival_time, value, source)
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""


def _raw_columns(events: list[dict[str, Any]], received_at: dt.datetime) -> list[list[Any]]:
    times = [dt.datetime.fromisoformat(e["event_time"]) for e in events]
    days = [t.date() for t in times]
    return [
        [e["event_id"] for e in events],
        [1] * len(events),
        days,
        [1] * len(events),
        times,
        [received_at] * len(events),
        [Decimal(repr(e["value"])) for e in events],
        [e["source"] for e in events],
    ]


def raw_insert_rate(database_url: str, spec: dict[str, Any], received_at: dt.datetime) -> float:
    """Rows/s of the prototype's insert for exactly the rows the 1,000-batch phase posted."""
    import psycopg

    now = dt.datetime.fromisoformat(spec["now"])
    rows = [
        batch_events(prefix=spec["prefix"], batch_index=index, size=spec["batch"], now=now,
                     spread=SPREAD)
        for index in range(spec["requests"])
    ]  # fmt: skip
    flat = [event for batch in rows for event in batch]
    chunks = [
        _raw_columns(flat[start : start + RAW_BATCH], received_at)
        for start in range(0, len(flat), RAW_BATCH)
    ]
    with psycopg.connect(database_url) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_raw_events")
        connection.execute("CREATE TABLE bench_raw_events (LIKE events_event INCLUDING ALL)")
        connection.commit()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for columns in chunks:
                cursor.execute(_RAW_INSERT, columns)
                cursor.fetchall()
                connection.commit()
        seconds = time.perf_counter() - started
        connection.execute("DROP TABLE bench_raw_events")
        connection.commit()
    return len(flat) / seconds


# --- Report ---------------------------------------------------------------------------------


def _phase_spec(args: argparse.Namespace, *, batch: int, events: int, tag: str) -> dict[str, Any]:
    from django.utils import timezone

    return {
        "token": args.token,
        "batch": batch,
        "requests": max(events // batch, 1),
        "connections": args.connections,
        "rate": None,
        "now": timezone.now().isoformat(),
        "spread_hours": SPREAD.total_seconds() / 3600,
        "prefix": f"{tag}-b{batch}",
    }


def rate_limit_note(limit: str) -> str:
    """What the report says about the per-token ingest rate limit during the run."""
    if limit.strip().lower() in {"", "off", "0", "none"}:
        return "Ingest rate limit: OFF (INGEST_RATE_LIMIT=off): requests skip its cache INCR."
    return (
        f"Ingest rate limit: on, {limit} per token (one cache INCR per request, set high "
        "enough not to throttle the load)."
    )


def coalesce_note() -> str:
    """What the report says about coalesced applies during the run."""
    from django.conf import settings

    batches, events = settings.APPLY_COALESCE_MAX_BATCHES, settings.APPLY_COALESCE_MAX_EVENTS
    if batches <= 1:
        return "Apply coalescing: off (APPLY_COALESCE_MAX_BATCHES=1): one batch per apply."
    return (
        f"Apply coalescing: on, an apply task takes up to {batches} waiting batches and "
        f"{events:,} events in one transaction (APPLY_COALESCE_MAX_BATCHES / _EVENTS)."
    )


def _report(
    phases: list[Phase],
    latency: Phase | None,
    spans: list[Phase],
    raw_rates: list[float],
    args,
    peaks,
) -> Report:
    report = Report("Ingest end to end")
    raw_rate = sum(raw_rates) / len(raw_rates) if raw_rates else 0.0
    if raw_rates:
        report.figure(
            "raw PostgreSQL unnest insert (same rows)",
            f"{raw_rate:,.0f} rows/s (before {raw_rates[0]:,.0f}, after {raw_rates[-1]:,.0f})",
        )
    for phase in phases:
        ratio = phase.applied_per_s / raw_rate if raw_rate else 0.0
        target = TARGET_RATIOS[phase.batch]
        report.figure(f"batch {phase.batch}: accepted", f"{phase.accepted_per_s:,.0f} events/s")
        report.figure(
            f"batch {phase.batch}: applied (end to end)",
            f"{phase.applied_per_s:,.0f} events/s = {ratio:.0%} of raw",
            f">= {target:.0%} of raw" if target else "reported",
            ratio >= target if target else None,
        )
        p99_target = phase.batch == 100  # for 1,000: at half the peak rate, below
        report.figure(
            f"batch {phase.batch}: ack p50 / p99 at peak",
            f"{phase.p50_ms:.1f} / {phase.p99_ms:.1f} ms",
            f"p99 < {TARGET_P99_MS:.0f} ms" if p99_target else "",
            phase.p99_ms < TARGET_P99_MS if p99_target else None,
        )
    if latency:
        report.figure(
            "batch 1000: ack p50 / p99 at half the peak rate",
            f"{latency.p50_ms:.1f} / {latency.p99_ms:.1f} ms "
            f"({latency.accepted_per_s:,.0f} events/s offered)",
            f"p99 < {TARGET_P99_MS:.0f} ms",
            latency.p99_ms < TARGET_P99_MS,
        )
    measured = [*phases, *([latency] if latency else []), *spans]
    if spans:
        few, many = spans
        span_ratio = many.applied_per_s / few.applied_per_s
        report.figure(
            "batch 1000 over 3 years of days vs over 10 days (applied, back to back)",
            f"{many.applied_per_s:,.0f} vs {few.applied_per_s:,.0f} events/s = {span_ratio:.2f}x",
            f">= {TARGET_SPAN_RATIO}x",
            span_ratio >= TARGET_SPAN_RATIO,
        )
        few_cpu, many_cpu = _server_cpu_ms(few), _server_cpu_ms(many)
        report.figure(
            "server CPU per 1,000 events (web + Celery + PostgreSQL), 3 years / 10 days, "
            "and the ratio it allows where the cores are the limit",
            f"{many_cpu:.1f} / {few_cpu:.1f} ms: {few_cpu / many_cpu:.2f}x",
        )
    cpu = Table("CPU time per 1,000 accepted events (ms)", ["phase", *measured[0].cpu_ms_per_1000])
    for phase in measured:
        cpu.rows.append([phase.label, *[f"{ms:.1f}" for ms in phase.cpu_ms_per_1000.values()]])
    report.tables.append(cpu)
    report.tables.append(_disk_table(measured))
    report.memory(peaks)
    report.notes += [
        f"Stack: gunicorn --workers {args.web_workers} (sync, as in the Procfile), "
        f"{args.celery_workers} Celery worker(s) `-P prefork -c 4`; load generator: "
        f"{args.connections} connections, closed loop; latency phase: open loop for "
        f"{args.latency_seconds}s, latencies from the scheduled send time. Each web worker "
        "is warmed up first (URL configuration, views, connections) with requests that "
        "store nothing.",
        rate_limit_note(os.environ.get("INGEST_RATE_LIMIT", "")),
        coalesce_note(),
        "Each phase starts right after a CHECKPOINT (when the role may), so that a "
        "checkpoint the earlier phases' writes call for does not begin inside it.",
        "Accepted = first send to last 202; applied = first send to the last apply "
        "(max day_total.last_applied_at) once every event is counted. Ratios use applied.",
        "Raw baseline: one connection, binary parameters, a scratch table with the same "
        "columns and indexes as events_event but without its foreign keys, commit per batch; "
        "run just before and just after the stack, the mean is the reference.",
        "HTTP statuses: " + "; ".join(f"{p.label} {p.statuses}" for p in measured),
    ]
    return report


def _disk_table(measured: list[Phase]) -> Table:
    same = {True: "the same device as", False: "another device than", None: "(unknown) vs"}[
        same_device_as_postgres(LOG_DIR)
    ]
    disk = Table(
        "The disk during each phase: an 8 KB write + fdatasync every 10 ms from this process "
        f"(var/bench, {same} PostgreSQL's data directory), ms",
        ["phase", "flushes", "p50", "p99", "slowest", "over 100 ms"],
    )
    for phase in measured:
        flushes = phase.fsync_ms
        if not flushes:
            disk.rows.append([phase.label, "0", "-", "-", "-", "-"])
            continue
        disk.rows.append(
            [
                phase.label,
                str(len(flushes)),
                f"{percentile(flushes, 0.50):.2f}",
                f"{percentile(flushes, 0.99):.1f}",
                f"{flushes[-1]:.0f}",
                str(sum(1 for ms in flushes if ms > 100)),
            ]
        )
    return disk


def _server_cpu_ms(phase: Phase) -> float:
    """CPU per 1,000 events of the processes under test: all of it but the load generator's."""
    return sum(ms for name, ms in phase.cpu_ms_per_1000.items() if name != LOADGEN)


def _span_phases(stack: Stack, args, *, tag: str, applied_before: int) -> list[Phase]:
    """1,000-event batches over 10 days, then over 3 years of days, back to back."""
    if not args.events_span:
        return []
    spans = []
    for label, span in (("few", SPAN_FEW), ("many", SPAN_MANY)):
        spec = {
            **_phase_spec(args, batch=1000, events=args.events_span, tag=f"{tag}{label}"),
            "spread_hours": span.total_seconds() / 3600,
        }
        phase = _run_phase(
            stack, label=f"batch 1000 over {span.days} days", spec=spec,
            applied_before=applied_before, wait_applied=True,
        )  # fmt: skip
        applied_before += phase.accepted
        spans.append(phase)
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-1000", type=int, default=200_000)
    parser.add_argument("--events-100", type=int, default=60_000)
    parser.add_argument("--events-10", type=int, default=10_000, help="0 to skip")
    parser.add_argument(
        "--events-span",
        type=int,
        default=100_000,
        help="events per many-days / few-days phase (batches of 1,000); 0 to skip",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--profile", action="store_true", help="attach py-spy to the web and Celery workers"
    )
    args = parser.parse_args()
    database_url, env = redis_stack_prepare("bench.ingest")
    from django.utils import timezone

    data_reset()
    args.token = api_token()
    tag = f"i{int(time.time())}"
    specs = {
        batch: _phase_spec(args, batch=batch, events=events, tag=tag)
        for batch, events in (
            (1000, args.events_1000),
            (100, args.events_100),
            (10, args.events_10),
        )
        if events
    }
    # The baseline runs just before and just after the stack, on the same rows as the
    # 1,000-event phase: on a shared machine the ratio then compares like with like.
    raw_spec = specs.get(1000)  # without the 1,000-event phase (--events-1000 0): no raw run
    raw_rates = [raw_insert_rate(database_url, raw_spec, timezone.now())] if raw_spec else []
    stack = stack_start(env, web_workers=args.web_workers, celery_workers=args.celery_workers)
    _warm_up(stack, args.token)
    profiler = Profiler(stack_python_pids(stack)) if args.profile else None
    if profiler:
        profiler.start()
    phases: list[Phase] = []
    try:
        applied = 0
        for batch, spec in specs.items():
            phase = _run_phase(
                stack, label=f"batch {batch}", spec=spec, applied_before=applied, wait_applied=True
            )
            applied += phase.accepted
            phases.append(phase)
        latency = None
        if raw_spec:  # the half-peak phase needs the 1,000-event phase's peak
            rate = phases[0].accepted_per_s / 2
            latency_spec = {
                **_phase_spec(
                    args, batch=1000, events=int(rate * args.latency_seconds), tag=tag + "l"
                ),
                "rate": rate,
                "connections": max(args.connections, 8),
            }
            latency = _run_phase(
                stack, label="batch 1000, half peak", spec=latency_spec, applied_before=applied,
                wait_applied=True,
            )  # fmt: skip
            applied += latency.accepted
        spans = _span_phases(stack, args, tag=tag, applied_before=applied)
        profiles = profiler.stop() if profiler else []
        peaks = stack_peaks(stack)
        peaks += [
            (f"PostgreSQL backend {index + 1}", peak)
            for index, peak in enumerate(postgres_backend_peaks())
        ]
    finally:
        stack.stop()
    if raw_spec:
        raw_rates.append(raw_insert_rate(database_url, raw_spec, timezone.now()))
    peaks.append(
        ("load generator (largest phase)", max(p.loadgen_peak_mib for p in [*phases, *spans]))
    )
    peaks.append(("this benchmark process", own_peak_rss_mib()))
    report = _report(phases, latency, spans, raw_rates, args, peaks)
    if profiles:
        report.notes.append("Profiled with py-spy (slows what it samples): see var/bench/.")
        report.tables += profiles
    report.emit()


if __name__ == "__main__":
    main()
