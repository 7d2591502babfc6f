"""The short fault-injection run (CI): real gunicorn, a Celery worker with two processes,
two beats, a private Redis and the run's own database; a few thousand events and one fault
of each kind; then the checker. The full run is `python -m bench.faults` (see
docs/reliability.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, _require, uses_postgresql

pytestmark = [pytest.mark.redis]

# The kinds docs/reliability.md promises (the run is a program under test: not imported).
FAULT_KINDS = (
    "worker_child_kill",
    "worker_main_kill",
    "redis_restart",
    "redis_down",
    "redis_paused",
    "pg_terminate_apply",
    "pg_terminate_snapshot",
    "pg_restart_ingest",
    "pg_restart_snapshot",
    "manual_snapshots",
)


def test_every_promise_holds_through_one_fault_of_each_kind(tmp_path: Path):
    _require(uses_postgresql(), "PostgreSQL (DATABASE_URL=postgres://...)")
    _require(shutil.which("redis-server") is not None, "redis-server (apt-get install redis)")
    report_path = tmp_path / "report.json"

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.faults",
            "--quick",
            "--seed",
            "11",
            "--json",
            str(report_path),
        ],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert report_path.exists(), run.stdout[-5000:] + run.stderr[-5000:]
    report = json.loads(report_path.read_text())
    assert report["violations"] == dict.fromkeys(report["violations"], 0), run.stdout
    assert (report["lost"], report["double_counted"]) == (0, 0)
    assert report["faults_injected"] == dict.fromkeys(FAULT_KINDS, 1), report["fault_errors"]
    assert report["batches_given_up"] == 0
    assert report["acked_event_ids"] > 1000
    assert report["simultaneous_rounds"] >= 1
    # The independent checker ran (the generator's log against the end state), the child
    # kill landed inside an apply by the apply's own marker, and checkpoints hashed rows.
    assert "day_totals_off_from_the_generators_sums" in report["violations"]
    assert report["truth_figures"]["counted"] > 1000
    child_kills = [f for f in report["fault_details"] if f["kind"] == "worker_child_kill"]
    assert all(f["killed_inside_apply"] for f in child_kills), child_kills
    assert report["checkpoint_errors"] == []
    assert report["figures"]["snapshot_rows_checked_across_checkpoints"] >= 10
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
