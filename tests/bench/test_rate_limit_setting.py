"""The ingest benchmark runs with the per-token rate limit on (set high) and says so."""

from __future__ import annotations

import os

from bench.common import BENCH_RATE_LIMIT, bench_environment
from bench.ingest import rate_limit_note
from snapagg_project.settings import env_rate


def test_the_benchmarks_run_with_the_rate_limit_on_by_default(monkeypatch):
    environ = {k: v for k, v in os.environ.items() if k != "INGEST_RATE_LIMIT"}
    monkeypatch.setattr(os, "environ", environ)

    env = bench_environment(database_url="postgres://127.0.0.1/x")

    requests, seconds = env_rate_of(env["INGEST_RATE_LIMIT"])
    assert env["INGEST_RATE_LIMIT"] == BENCH_RATE_LIMIT
    assert requests / seconds >= 10_000  # far above what the load generator sends


def env_rate_of(value: str) -> tuple[int, int]:
    os.environ["BENCH_PROBE_RATE"] = value
    try:
        limit = env_rate("BENCH_PROBE_RATE", "off")
    finally:
        del os.environ["BENCH_PROBE_RATE"]
    assert limit is not None, "the rate limit is off"
    return limit


def test_the_report_states_whether_the_rate_limit_was_on():
    assert "OFF" in rate_limit_note("off")
    assert "on, 100000/second" in rate_limit_note(BENCH_RATE_LIMIT)
