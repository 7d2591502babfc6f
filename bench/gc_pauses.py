"""Full garbage collections in a web worker, and the ingest latency they cause.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python -m bench.gc_pauses

Rounds alternate, each in a fresh process: the WSGI application as gunicorn now loads it
(`snapagg_project.wsgi`: every view imported, then the collector frozen) and the same without
the freeze (as before). Each round posts 1,000-event batches with Django's test client: no
network, no gunicorn, no worker (the batches wait, on a queue of this benchmark's own,
emptied at the end). Per round: request latency p50 / p99 / max, and the number and
duration of full (generation 2) collections, timed with `gc.callbacks`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import subprocess
import sys
import time

import orjson

from bench.common import (
    ROOT,
    Report,
    Table,
    api_token,
    apply_flag_down,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    percentile,
)
from bench.workload import batch_events

QUEUE = "snapagg_bench_gc"


class _FullCollections:
    """Durations (ms) of the full collections while installed."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append((time.perf_counter() - self._started) * 1000)


def _round(client, *, requests: int, size: int, start: int) -> list[object]:
    """[slowest ms, longest full collection ms, then the table's cells]."""
    from django.utils import timezone

    now = timezone.now()
    bodies = [
        orjson.dumps(
            {
                "events": batch_events(
                    prefix="gc", batch_index=start + n, size=size, now=now,
                    spread=dt.timedelta(hours=48),
                )
            }
        )
        for n in range(requests)
    ]  # fmt: skip
    collections = _FullCollections()
    gc.callbacks.append(collections)
    latencies = []
    try:
        for body in bodies:
            began = time.perf_counter()
            response = client.post("/api/events/", data=body, content_type="application/json")
            latencies.append((time.perf_counter() - began) * 1000)
            if response.status_code != 202:
                raise SystemExit(f"POST /api/events/ answered {response.status_code}")
    finally:
        gc.callbacks.remove(collections)
    latencies.sort()
    durations = collections.durations
    return [
        latencies[-1],
        max(durations, default=0.0),
        f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f} / "
        f"{latencies[-1]:.1f}",
        str(len(durations)),
        f"{statistics.mean(durations):.1f} / {max(durations):.1f}" if durations else "-",
    ]


def _queue_empty() -> None:
    """Drop this benchmark's apply messages and its apply flag: no worker took them."""
    from snapagg_project.celery import app

    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)
    apply_flag_down()


def _child(args: argparse.Namespace) -> None:
    """One round in this process, with the collector as asked; prints its row as JSON."""
    database_url = bench_database_url()
    bench_environment(database_url=database_url)
    os.environ["CELERY_QUEUE"] = QUEUE  # not the stacks' queue: nothing consumes this one
    django_setup()
    if args.collector == "frozen":
        import snapagg_project.wsgi  # noqa: F401  (what a gunicorn worker imports)
    else:  # the same module before the freeze: the application and every view
        from importlib import import_module

        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        get_wsgi_application()
        import_module(settings.ROOT_URLCONF)
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {api_token()}")
    _round(client, requests=10, size=args.size, start=args.start)  # warm-up, not counted
    row = _round(client, requests=args.requests, size=args.size, start=args.start + 10)
    print(orjson.dumps([args.collector, gc.get_freeze_count(), *row]).decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="posts per round")
    parser.add_argument("--size", type=int, default=1000, help="events per post")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each setting")
    parser.add_argument("--collector", choices=["frozen", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collector:
        _child(args)
        return
    if not os.environ.get("CELERY_BROKER_URL", "").startswith(("redis", "rediss")):
        raise SystemExit("bench.gc_pauses needs Redis: set CELERY_BROKER_URL=redis://...")
    database_url = bench_database_url()
    env = {**bench_environment(database_url=database_url), "CELERY_QUEUE": QUEUE}
    os.environ["CELERY_QUEUE"] = QUEUE  # for the flag this process lowers at the end
    database_prepare(database_url, env)
    django_setup()
    data_reset()
    rows = []
    worst = {"frozen": [0.0, 0.0], "plain": [0.0, 0.0]}
    try:
        for index in range(args.rounds * 2):
            collector = "frozen" if index % 2 == 0 else "plain"
            done = subprocess.run(
                [
                    sys.executable, "-m", "bench.gc_pauses", "--collector", collector,
                    "--requests", str(args.requests), "--size", str(args.size),
                    "--start", str(index * (args.requests + 10)),
                ],
                cwd=ROOT, capture_output=True, text=True, check=True,
                env={**env, "BENCH_DATABASE_URL": database_url},
            )  # fmt: skip
            name, frozen, slowest, longest, *row = orjson.loads(done.stdout.splitlines()[-1])
            label = f"frozen ({frozen:,} objects)" if name == "frozen" else "not frozen (before)"
            rows.append([label, *row])
            worst[name] = [max(worst[name][0], slowest), max(worst[name][1], longest)]
    finally:
        _queue_empty()
    report = Report(f"Full garbage collections in a web worker, {args.size}-event posts")
    report.figure(
        "slowest post, not frozen vs frozen (all rounds)",
        f"{worst['plain'][0]:.1f} vs {worst['frozen'][0]:.1f} ms",
    )
    report.figure(
        "longest full collection, not frozen vs frozen",
        f"{worst['plain'][1]:.1f} vs {worst['frozen'][1]:.1f} ms",
    )
    report.tables.append(
        Table(
            f"Per round of {args.requests} posts (a process each, after 10 not counted), in order",
            ["collector", "latency p50 / p99 / max (ms)", "full collections", "mean / max (ms)"],
            rows,
        )
    )
    report.memory([("benchmark process", own_peak_rss_mib())])
    report.notes.append(
        "In process through the WSGI application with Django's test client (no network, no "
        "gunicorn); frozen: snapagg_project.wsgi as gunicorn imports it; not frozen: the "
        "same application and views without gc.freeze(). No worker: the batches wait."
    )
    report.emit()


if __name__ == "__main__":
    main()
