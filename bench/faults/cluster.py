"""Real processes for fault runs: a private Redis, gunicorn, a Celery worker and beats.

Everything started here is a child of the caller, in its own process group, bound to
127.0.0.1, and stopped by pid. Nothing touches a shared Redis or restarts PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import redis

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUEUE = "snapagg"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


# --- PostgreSQL: a dedicated database, never the server ----------------------------------


def database_url_with_name(url: str, name: str, **query: str) -> str:
    parts = urlsplit(url)
    extra = "&".join(f"{key}={value}" for key, value in query.items())
    return urlunsplit(parts._replace(path=f"/{name}", query=extra))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def connect(url: str, **kwargs) -> psycopg.Connection:
    parts = urlsplit(url)
    return psycopg.connect(urlunsplit(parts._replace(query="")), **kwargs)


def database_recreate(url: str) -> None:
    """Drop and create the run's own database (FORCE ends only that database's sessions)."""
    name = database_name(url)
    with connect(database_url_with_name(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    name = database_name(url)
    with connect(database_url_with_name(url, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Redis: private, no persistence -------------------------------------------------------


@dataclass
class PrivateRedis:
    """A redis-server child on a free port with no persistence: killing it loses
    everything in it, which is the point."""

    workdir: Path
    port: int = field(default_factory=free_port)
    password: str | None = None
    process: subprocess.Popen | None = None
    restarts: int = 0

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            password=self.password,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = subprocess.Popen(argv, start_new_session=True)
        wait_until(self.answers, 15, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: whatever was queued is gone (no persistence)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.restarts += 1
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered (a hung or
        partitioned Redis)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def queued(self) -> int:
        """Messages waiting in the Celery queue (0 if Redis does not answer)."""
        try:
            return int(self.client().llen(QUEUE))
        except redis.RedisError:
            return 0

    def reserved(self) -> int:
        """Messages delivered to a worker and not yet acknowledged (kombu's unacked hash)."""
        try:
            return int(self.client().hlen("unacked"))
        except redis.RedisError:
            return 0


# --- Django / Celery processes -----------------------------------------------------------


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n--- start {self.starts + 1} ---\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.argv,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill_main(self) -> list[int]:
        """SIGKILL the main process only; returns its children, now orphans."""
        orphans = [child.pid for child in self.children()]
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(10)
        return orphans

    def stop(self, grace: float = 10) -> None:
        """TERM the process group we created, then KILL what is left of it."""
        if self.process is None:
            return
        members = [self.pid, *(child.pid for child in self.children())]
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        _signal_group(self.pid, signal.SIGKILL)
        for pid in members:
            _kill_quietly(pid)
        if self.process.poll() is None:
            self.process.wait(10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Stack:
    """Web (gunicorn), one Celery worker (prefork, 2 children) and any number of beats,
    all pointed at one database and one private Redis."""

    database_url: str
    redis: PrivateRedis
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    web: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    beats: list[ManagedProcess] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self, role: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
        url = self.database_url
        separator = "&" if urlsplit(url).query else "?"
        return {
            **keep,
            "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
            # application_name lets the fault injector tell worker backends from web ones.
            "DATABASE_URL": f"{url}{separator}application_name=snapagg-{role}",
            "CELERY_BROKER_URL": self.redis.url(0),
            "CACHE_URL": self.redis.url(1),
            "SNAPAGG_VAR_DIR": str(self.workdir / "var"),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def start_web(self, workers: int = 2) -> None:
        argv = self._python(
            "-m", "gunicorn", "snapagg_project.wsgi",
            "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers),
            "--timeout", "60", "--graceful-timeout", "5",
        )  # fmt: skip
        self.web = ManagedProcess("web", argv, self.env("web"), self.workdir / "web.log")
        self.web.start()
        wait_until(self._web_answers, 60, "gunicorn to answer /api/health/")

    def _web_answers(self) -> bool:
        import http.client

        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=5)
            conn.request("GET", "/api/health/")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def start_worker(self, *, pool: str = "prefork", concurrency: int = 2) -> None:
        if self.worker is None:
            argv = self._python(
                "-m", "celery", "-A", "snapagg_project", "worker",
                "-P", pool, "-c", str(concurrency), "-l", "info",
                "-n", "faults@localhost", "--without-mingle", "--without-gossip",
            )  # fmt: skip
            log_path = self.workdir / "worker.log"
            self.worker = ManagedProcess("worker", argv, self.env("worker"), log_path)
        ready_before = self.worker.log().count(" ready.")
        self.worker.start()
        wait_until(
            lambda: self.worker.log().count(" ready.") > ready_before or not self.worker.alive(),
            90,
            "the Celery worker to be ready",
        )
        if not self.worker.alive():
            raise RuntimeError(f"the worker exited:\n{self.worker.log()[-3000:]}")

    def start_beat(self) -> ManagedProcess:
        number = len(self.beats) + 1
        argv = self._python(
            "-m", "celery", "-A", "snapagg_project", "beat", "-l", "info",
            "--max-interval", "1", "-s", str(self.workdir / f"beat-{number}.schedule"),
        )  # fmt: skip
        beat = ManagedProcess(
            f"beat-{number}", argv, self.env("beat"), self.workdir / f"beat-{number}.log"
        )
        beat.start()
        self.beats.append(beat)
        return beat

    def manage(self, *args: str, timeout: float = 300) -> str:
        """Run a management command against the run's database and Redis."""
        done = subprocess.run(
            self._python("manage.py", *args),
            cwd=PROJECT_ROOT,
            env=self.env("manage"),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        for process in [*self.beats, self.worker, self.web]:
            if process is not None:
                process.stop()
