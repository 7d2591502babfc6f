"""The harness that the benchmarks, the fault run and the tests start processes with: real
child processes, no application."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from harness.processes import ManagedProcess, Stack
from harness.waiting import ProcessExited, wait_until

CHILD_AND_SLEEP = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", child.pid, "ready.", flush=True)
time.sleep(600)
"""


def _python(code: str, tmp_path: Path, name: str = "proc", **fields) -> ManagedProcess:
    return ManagedProcess(
        name=name,
        argv=[sys.executable, "-u", "-c", code],
        env=dict(os.environ),
        log_path=tmp_path / f"{name}.log",
        **fields,
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_waiting_on_a_process_that_exits_fails_with_its_log_not_a_timeout(tmp_path):
    process = _python("print('cannot start: no broker'); raise SystemExit(3)", tmp_path)
    process.start()

    with pytest.raises(ProcessExited, match="cannot start: no broker"):
        wait_until(lambda: False, 120, "something that never comes", process)


def test_stop_ends_the_process_and_the_children_it_started(tmp_path):
    process = _python(CHILD_AND_SLEEP, tmp_path, ready=lambda p: "ready." in p.log())
    process.start()
    child = int(process.log().split("child ")[1].split()[0])
    main = process.pid

    process.stop(grace=5)

    assert not process.alive()
    wait_until(lambda: _gone(main) and _gone(child), 30, "both processes to be gone")


def test_a_restart_appends_to_the_log_and_waits_for_the_new_start_to_be_ready(tmp_path):
    process = _python(CHILD_AND_SLEEP, tmp_path, ready=lambda p: "ready." in p.log_since_start())
    process.start()
    first_pid = process.pid
    for pid in process.kill_main():
        psutil.Process(pid).kill()

    process.start()

    try:
        assert process.pid != first_pid
        assert process.starts == 2
        assert process.log().count("ready.") == 2
        assert process.log_since_start().startswith("--- start 2 ---")
    finally:
        process.stop(grace=5)


def test_a_stack_names_each_role_in_its_database_sessions(tmp_path):
    stack = Stack(
        env={"DATABASE_URL": "postgres://u@127.0.0.1:5432/db?sslmode=disable"}, workdir=tmp_path
    )
    plain = Stack(env={"DATABASE_URL": "postgres://u@127.0.0.1:5432/db"}, workdir=tmp_path)

    assert stack.role_env("worker")["DATABASE_URL"] == (
        "postgres://u@127.0.0.1:5432/db?sslmode=disable&application_name=snapagg-worker"
    )
    assert plain.role_env("web")["DATABASE_URL"].endswith("/db?application_name=snapagg-web")
