"""A burst of waiting small batches drained by a real worker, coalescing off vs on.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python -m bench.apply_burst

N batches (default 1,000 of 10 events, over about three days and three sources) are stored
first (`events_ingest(enqueue=False)`), then all their apply messages are published at once
to one prefork worker (`-c 4`, as in the Procfile), as after a broker outage or a sweep, or
as a burst of small posts arrives faster than it is applied. Measured until every batch is
applied and every message handled: events/s, the worker's and PostgreSQL's CPU per batch,
batches per apply transaction. Coalescing off (APPLY_COALESCE_MAX_BATCHES=1) and on (the
settings' default, or the environment's) alternate, same code and database, `--rounds`
times each; the ratio on/off is the figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from dataclasses import dataclass

import psutil

from bench.common import (
    LOG_DIR,
    Report,
    Table,
    _heartbeat_stored,
    backend_cpu_seconds,
    data_reset,
    own_peak_rss_mib,
    redis_stack_prepare,
)
from harness.processes import Stack
from harness.waiting import wait_until


@dataclass
class Drain:
    cap: int
    seconds: float
    events_per_s: float
    worker_ms_per_batch: float
    postgres_ms_per_batch: float
    batches_per_transaction: float


def _tree_cpu(process: psutil.Process) -> float:
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _store(batches: int, size: int, tag: str) -> list[int]:
    from django.utils import timezone

    from events.models import IngestChannel
    from events.services.ingest import events_ingest

    now = timezone.now()
    ids = []
    for batch in range(batches):
        events = [
            {
                "event_id": f"{tag}-{batch}-{index}",
                "event_time": (now - dt.timedelta(hours=(batch + index * 7) % 60)).isoformat(),
                "value": "1.25",
                "source": f"s{index % 3}",
            }
            for index in range(size)
        ]
        result = events_ingest(
            raw_events=events, received_at=now, channel=IngestChannel.API, enqueue=False
        )
        ids.append(result.batch_id)
    return ids


def _drain(env: dict[str, str], *, cap: int, batches: int, size: int, tag: str) -> Drain:
    from events.models import BatchStatus, IngestBatch
    from events.services.enqueue import batch_enqueue_apply
    from snapagg_project.celery import app

    data_reset()
    app.control.purge()
    stack = Stack(
        env={**env, "APPLY_COALESCE_MAX_BATCHES": str(cap)}, workdir=LOG_DIR, stop_grace=30
    )
    try:
        hostname = f"burst-{tag}@localhost"
        worker = stack.start_worker(
            hostname=hostname,
            pool="prefork",
            concurrency=4,
            args=(),
            ready=_heartbeat_stored(hostname),
            ready_timeout=60,
        )
        ids = _store(batches, size, tag)
        process = psutil.Process(worker.pid)
        worker_before, postgres_before = _tree_cpu(process), sum(backend_cpu_seconds().values())
        started = time.perf_counter()
        for batch_id in ids:
            batch_enqueue_apply(batch_id)
        wait_until(
            lambda: not IngestBatch.objects.filter(status=BatchStatus.RECEIVED).exists(),
            600,
            "every batch applied",
            [worker],
        )
        # Every message handled too: the tasks of batches taken along still run (no-ops).
        wait_until(
            lambda: worker.log().count("succeeded in") >= batches,
            600,
            "every task run",
            [worker],
        )
        seconds = time.perf_counter() - started
        worker_spent = _tree_cpu(process) - worker_before
        postgres_spent = sum(backend_cpu_seconds().values()) - postgres_before
        transactions = IngestBatch.objects.values("applied_at").distinct().count()
    finally:
        stack.stop()
    return Drain(
        cap=cap,
        seconds=seconds,
        events_per_s=batches * size / seconds,
        worker_ms_per_batch=worker_spent * 1000 / batches,
        postgres_ms_per_batch=postgres_spent * 1000 / batches,
        batches_per_transaction=batches / max(transactions, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10, help="events per batch")
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs")
    args = parser.parse_args()
    _, env = redis_stack_prepare("bench.apply_burst")
    from django.conf import settings

    on = max(settings.APPLY_COALESCE_MAX_BATCHES, 2)
    drains: list[Drain] = []
    for round_ in range(args.rounds):
        for cap in (1, on):
            tag = f"r{round_}c{cap}t{int(time.time())}"
            drains.append(_drain(env, cap=cap, batches=args.batches, size=args.size, tag=tag))

    report = Report(f"Apply burst, {args.batches:,} batches of {args.size}")
    off = [d for d in drains if d.cap == 1]
    coalesced = [d for d in drains if d.cap != 1]
    rate_off = sum(d.events_per_s for d in off) / len(off)
    rate_on = sum(d.events_per_s for d in coalesced) / len(coalesced)
    report.figure(
        "drain rate, coalescing on vs off (mean of rounds)",
        f"{rate_on:,.0f} vs {rate_off:,.0f} events/s = {rate_on / rate_off:.2f}x",
    )
    for name, attribute in (
        ("worker CPU per batch", "worker_ms_per_batch"),
        ("PostgreSQL CPU per batch", "postgres_ms_per_batch"),
    ):
        mean_on = sum(getattr(d, attribute) for d in coalesced) / len(coalesced)
        mean_off = sum(getattr(d, attribute) for d in off) / len(off)
        report.figure(
            f"{name}, on vs off", f"{mean_on:.2f} vs {mean_off:.2f} ms = {mean_on / mean_off:.2f}x"
        )
    table = Table(
        "Each drain, in the order run",
        [
            "APPLY_COALESCE_MAX_BATCHES",
            "seconds",
            "events/s",
            "worker CPU ms/batch",
            "PostgreSQL CPU ms/batch",
            "batches per apply transaction",
        ],
    )
    for d in drains:
        table.rows.append(
            [
                str(d.cap),
                f"{d.seconds:.2f}",
                f"{d.events_per_s:,.0f}",
                f"{d.worker_ms_per_batch:.2f}",
                f"{d.postgres_ms_per_batch:.2f}",
                f"{d.batches_per_transaction:.1f}",
            ]
        )
    report.tables.append(table)
    report.memory([("this benchmark process", own_peak_rss_mib())])
    report.notes += [
        f"One Celery worker `-P prefork -c 4`; coalescing on = {on} batches and "
        f"{settings.APPLY_COALESCE_MAX_EVENTS:,} events per apply at most. The batches are "
        "stored before the clock starts; the clock runs from the first publish until every "
        "batch is applied and every message handled (each batch still has its own message: "
        "the tasks of batches taken along find them applied and do nothing).",
        "Worker CPU: the worker's main process and its pool; PostgreSQL CPU: every backend "
        "of the benchmark database (the worker's, and this process's polling).",
    ]
    report.emit()


if __name__ == "__main__":
    main()
