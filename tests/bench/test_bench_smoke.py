"""Each benchmark command still runs (tiny sizes, nothing recorded). No timing is asserted:
the figures are the benchmarks' business, not the tests'."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.timeout(240)]

SMOKE_RUNS = [
    pytest.param(["bench.replay", "--events", "3000", "--days", "20"], id="replay"),
    pytest.param(
        [
            "bench.replay",
            "--realistic",
            "--days",
            "3",
        ],
        id="replay-realistic",
    ),
    pytest.param(
        ["bench.snapshot_history", "--sizes", "1000", "3000", "--rounds", "1", "--days", "20"],
        id="snapshot_history",
    ),
    pytest.param(["bench.archive", "--events", "2000", "--days", "20"], id="archive"),
    pytest.param(
        ["bench.pages", "--days", "20", "--snapshots-per-day", "12", "--repeats", "1"],
        id="pages",
    ),
    pytest.param(
        ["bench.aggregates", "--days", "20", "--sources", "3", "--repeats", "1"],
        id="aggregates",
    ),
    pytest.param(
        [
            "bench.ingest",
            "--events-1000",
            "2000",
            "--events-100",
            "500",
            "--events-10",
            "100",
            "--events-span",
            "2000",
            "--latency-seconds",
            "1",
        ],
        marks=pytest.mark.redis,
        id="ingest",
    ),
    pytest.param(
        ["bench.apply_burst", "--batches", "40", "--size", "5", "--rounds", "1"],
        marks=pytest.mark.redis,
        id="apply_burst",
    ),
    pytest.param(
        ["bench.gc_pauses", "--requests", "20", "--size", "100", "--rounds", "1"],
        marks=pytest.mark.redis,
        id="gc_pauses",
    ),
    pytest.param(
        [
            "bench.read_storm",
            "--clients",
            "30",
            "--requests",
            "200",
            "--keepalive",
            "5",
            "--days",
            "3",
        ],
        id="read_storm",
    ),
]


@pytest.mark.parametrize("command", SMOKE_RUNS)
def test_benchmark_command_runs_and_prints_its_figures(command):
    # The benchmarks make their own database beside the development one (<name>_bench).
    env = {**os.environ, "BENCH_NO_RECORD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "figure" in done.stdout
    assert "Peak memory" in done.stdout
    if command[0] == "bench.ingest":
        assert "Ingest rate limit: on" in done.stdout
        assert "Apply coalescing: on" in done.stdout
