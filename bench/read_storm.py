"""Read storm: many clients at once, each with its own API key, against a read API and, in
the same run, against a trivial authenticated DRF endpoint.

    DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://... .venv/bin/python -m bench.read_storm

Starts gunicorn on the benchmark database (as the Procfile does), replays a small history
so the read has days to show, creates one key per client, then:

1. storm: --clients clients (1,000), each opening its own connection and asking once, all
   released together; the time until the last answer, for --path and for the trivial
   endpoint, twice each in the order trivial, read, read, trivial (mean time). Target: all
   answered, no 5xx, storm time <= 1.5x the trivial one's.
2. keep-alive: --requests requests (10,000) over --keepalive clients (100) reusing their
   connections; requests/s for both. Target: >= 50% of the trivial endpoint's.

The read (--path) is by default the issue's: this month's totals grouped by day (on the
first of a month that is one day; `--path "/api/aggregates/?period=last_30_days&group_by=day"`
reads thirty). gunicorn serves with the Procfile web line's options (worker class, threads,
backlog); --worker-class and --threads override them, to compare.

The trivial endpoint is GET /api/metrics/: authentication, the key's scope check and one
query of a few rows, no day data. Client threads run in this process; both endpoints are
measured by the same client, so its own cost weighs on both alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.common import (
    LOG_DIR,
    Report,
    bench_database_url,
    bench_environment,
    data_reset,
    database_prepare,
    django_setup,
    own_peak_rss_mib,
    percentile,
    procfile_web_options,
    procfile_web_workers,
    stack_peaks,
)
from bench.replay import history_load
from bench.workload import realistic_events
from harness.processes import PATIENT_WEB, Stack

TRIVIAL_PATH = "/api/metrics/"
READ_PATH = "/api/aggregates/?period=this_month&group_by=day"
TARGET_STORM_RATIO = 1.5
TARGET_KEEPALIVE_SHARE = 0.5


@dataclass
class Outcome:
    seconds: float
    statuses: Counter
    latencies_ms: list[float]

    @property
    def answered(self) -> int:
        return sum(self.statuses.values()) - self.statuses.get("error", 0)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if str(status).startswith("5"))


def _get(connection: http.client.HTTPConnection, path: str, key: str) -> int:
    connection.request("GET", path, headers={"Authorization": f"Token {key}"})
    response = connection.getresponse()
    response.read()
    if response.getheader("Connection", "").lower() == "close":
        connection.close()  # http.client reconnects on the next request
    return response.status


def _run_clients(base_url: str, path: str, keys: list[str], per_client: int) -> Outcome:
    """len(keys) client threads, released together, each sending `per_client` requests over
    one connection (reopened when the server closes it)."""
    host = urlsplit(base_url)
    statuses: Counter = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(len(keys) + 1)

    def client(key: str) -> None:
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
        start.wait()
        for _ in range(per_client):
            sent = time.perf_counter()
            try:
                status: int | str = _get(connection, path, key)
            except (OSError, http.client.HTTPException):
                status = "error"
                connection.close()
            elapsed = (time.perf_counter() - sent) * 1000
            with lock:
                statuses[status] += 1
                latencies.append(elapsed)
        connection.close()

    threads = [threading.Thread(target=client, args=(key,), daemon=True) for key in keys]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Outcome(time.perf_counter() - began, statuses, sorted(latencies))


def _combined(outcomes: list[Outcome]) -> Outcome:
    """Several storms of one endpoint: the mean time, every answer."""
    statuses: Counter = Counter()
    for outcome in outcomes:
        statuses.update(outcome.statuses)
    return Outcome(
        seconds=sum(o.seconds for o in outcomes) / len(outcomes),
        statuses=statuses,
        latencies_ms=sorted(ms for o in outcomes for ms in o.latencies_ms),
    )


def _keys(count: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apikeys.selectors import api_key_role_scopes
    from apikeys.services import api_key_create

    user, _ = get_user_model().objects.get_or_create(username="bench-reader")
    scopes = api_key_role_scopes(user=user)
    now = timezone.now()
    return [
        api_key_create(user=user, name=f"reader {n}", scopes=scopes, expires_at=None, now=now)[1]
        for n in range(count)
    ]


def _history(days: int) -> int:
    first_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days + 1)
    events = realistic_events(
        prefix="storm", first_day=first_day, days=days, per_day=200, late_share=0.065
    )
    return history_load(events, interval=dt.timedelta(hours=6)).events


def _row(label: str, outcome: Outcome) -> str:
    return (
        f"{label}: {outcome.seconds:.2f} s, {outcome.answered:,} answered, "
        f"p50/p99 {percentile(outcome.latencies_ms, 0.5):.0f}/"
        f"{percentile(outcome.latencies_ms, 0.99):.0f} ms, {dict(outcome.statuses)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", default=READ_PATH, help="the read measured")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--keepalive", type=int, default=100)
    parser.add_argument("--web-workers", type=int, default=procfile_web_workers())
    parser.add_argument("--worker-class", help="gunicorn's; default: the Procfile's")
    parser.add_argument("--threads", type=int, help="gunicorn's; default: the Procfile's")
    parser.add_argument("--days", type=int, default=60, help="history behind the read")
    args = parser.parse_args()
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url)
    database_prepare(database_url, env)
    django_setup()
    data_reset()
    events = _history(args.days)
    keys = _keys(max(args.clients, args.keepalive))
    web_options = procfile_web_options()
    if args.worker_class:
        web_options += ["--worker-class", args.worker_class]
    if args.threads:
        web_options += ["--threads", str(args.threads)]
    stack = Stack(env=env, workdir=LOG_DIR)
    try:
        stack.start_web(workers=args.web_workers, args=[*PATIENT_WEB, *web_options])
        # Unmeasured: every key's first use (it notes last_used_at) and cold workers would
        # otherwise weigh on whichever endpoint goes first.
        _run_clients(stack.base_url, TRIVIAL_PATH, keys, 1)
        # Two storms each, in the order trivial, read, read, trivial: going first or second
        # weighs alike on both (a first storm was often the slower one).
        storms: dict[str, list[Outcome]] = {TRIVIAL_PATH: [], args.path: []}
        for path in (TRIVIAL_PATH, args.path, args.path, TRIVIAL_PATH):
            storms[path].append(_run_clients(stack.base_url, path, keys[: args.clients], 1))
        storm = {path: _combined(outcomes) for path, outcomes in storms.items()}
        per_client = max(args.requests // args.keepalive, 1)
        kept = {
            path: _run_clients(stack.base_url, path, keys[: args.keepalive], per_client)
            for path in (TRIVIAL_PATH, args.path)
        }
        peaks = stack_peaks(stack)
    finally:
        stack.stop()
    report = Report("Read storm")
    trivial, read = storm[TRIVIAL_PATH], storm[args.path]
    ratio = read.seconds / trivial.seconds
    report.figure(
        f"storm, {args.clients:,} clients at once (twice, mean time): {args.path}",
        _row("read", read),
        "all answered, no 5xx",
        read.answered == 2 * args.clients and read.server_errors == 0,
    )
    report.figure(f"storm: {TRIVIAL_PATH} (trivial, same run)", _row("trivial", trivial))
    report.figure(
        "storm time, read / trivial",
        f"{ratio:.2f}x",
        f"<= {TARGET_STORM_RATIO}x",
        ratio <= TARGET_STORM_RATIO,
    )
    rates = {path: outcome.answered / outcome.seconds for path, outcome in kept.items()}
    share = rates[args.path] / rates[TRIVIAL_PATH]
    total = per_client * args.keepalive
    report.figure(
        f"keep-alive, {total:,} requests over {args.keepalive} clients",
        f"{args.path} {rates[args.path]:,.0f} req/s, {TRIVIAL_PATH} {rates[TRIVIAL_PATH]:,.0f} "
        f"req/s = {share:.0%}",
        f">= {TARGET_KEEPALIVE_SHARE:.0%} of trivial",
        share >= TARGET_KEEPALIVE_SHARE,
    )
    report.memory([*peaks, ("this benchmark process (clients)", own_peak_rss_mib())])
    report.notes += [
        f"gunicorn --workers {args.web_workers} {' '.join(web_options) or '(sync)'} "
        f"(Procfile: {' '.join(procfile_web_options()) or 'sync'}); history: "
        f"{events:,} events over {args.days} days replayed with 6-hour snapshots; one API key "
        "per client, each used once before measuring (warm-up storm, not counted); client "
        "threads in the benchmark process.",
        "Storm times in order (trivial, read, read, trivial): "
        + ", ".join(
            f"{o.seconds:.2f} s"
            for o in (storms[TRIVIAL_PATH][0], *storms[args.path], storms[TRIVIAL_PATH][1])
        ),
        "Statuses per phase (keep-alive): "
        + "; ".join(f"{path} {dict(o.statuses)}" for path, o in kept.items()),
    ]
    report.emit()


if __name__ == "__main__":
    main()
