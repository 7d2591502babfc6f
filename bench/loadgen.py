"""A bounded HTTP load generator, run as its own process by bench.ingest.

Reads a JSON spec on stdin, builds every request body before the clock starts (so the
client costs little while measuring), sends them over a fixed number of connections and
prints one JSON result on stdout.

Closed loop (`rate` null): each connection sends its next request as soon as the previous
one is answered: the peak rate. Open loop (`rate` in events/s): requests leave on a fixed
schedule and each latency is measured from its scheduled time, so a slow answer that delays
the next send is counted, not hidden (no coordinated omission).
"""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import json
import resource
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench.workload import batch_events


@dataclass
class Sent:
    scheduled: float
    answered: float
    status: int
    accepted: int


def _bodies(spec: dict[str, Any]) -> list[bytes]:
    now = dt.datetime.fromisoformat(spec["now"])
    spread = dt.timedelta(hours=spec["spread_hours"])
    return [
        orjson.dumps(
            {
                "events": batch_events(
                    prefix=spec["prefix"], batch_index=index, size=spec["batch"], now=now,
                    spread=spread,
                )
            }
        )
        for index in range(spec["requests"])
    ]  # fmt: skip


class _Client:
    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def post(self, body: bytes) -> tuple[int, bytes]:
        # http.client reopens the connection when the server closed it (gunicorn's sync
        # workers answer with Connection: close).
        self.connection.request("POST", self.path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def _run(spec: dict[str, Any], bodies: list[bytes]) -> tuple[float, float, list[Sent]]:
    """Send every body; return (perf_counter origin, the wall clock at it, the results)."""
    rate = spec.get("rate")
    interval = spec["batch"] / rate if rate else 0.0
    next_index = itertools.count()
    results: list[Sent] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.05

    def worker() -> None:
        client = _Client(spec["url"], spec["token"])
        while (index := next(next_index)) < len(bodies):
            scheduled = start + index * interval if rate else time.perf_counter()
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if not rate:
                scheduled = time.perf_counter()
            status, payload = client.post(bodies[index])
            answered = time.perf_counter()
            accepted = orjson.loads(payload).get("accepted", 0) if status == 202 else 0
            with lock:
                results.append(Sent(scheduled, answered, status, accepted))

    threads = [threading.Thread(target=worker) for _ in range(spec["connections"])]
    wall_at_start = time.time() + (start - time.perf_counter())
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return start, wall_at_start, results


def main() -> None:
    spec = json.load(sys.stdin)
    bodies = _bodies(spec)
    cpu_before = time.process_time()
    origin, wall_at_origin, results = _run(spec, bodies)
    cpu_seconds = time.process_time() - cpu_before
    first = min(sent.scheduled for sent in results)
    last = max(sent.answered for sent in results)
    statuses: dict[str, int] = {}
    for sent in results:
        statuses[str(sent.status)] = statuses.get(str(sent.status), 0) + 1
    print(
        json.dumps(
            {
                # Wall clock, comparable with the apply times the workers store.
                "started_at": wall_at_origin + (first - origin),
                "duration": last - first,
                "requests": len(results),
                "accepted": sum(sent.accepted for sent in results),
                "statuses": statuses,
                "latencies_ms": sorted((s.answered - s.scheduled) * 1000 for s in results),
                "body_bytes": sum(len(body) for body in bodies) // max(len(bodies), 1),
                "cpu_seconds": cpu_seconds,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
