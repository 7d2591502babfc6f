"""Child processes of the project: gunicorn, Celery workers and beats, manage.py.

Each one runs in a session of its own (it and its children are stopped together, by
process group, and only they), bound to 127.0.0.1, with its output in a log file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psutil

from harness.ports import free_port
from harness.waiting import http_ok, wait_until

if TYPE_CHECKING:
    from harness.private_redis import PrivateRedis

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "snapagg_project.settings"
WSGI_APP = "snapagg_project.wsgi"
CELERY_APP = "snapagg_project"
# A worker that neither syncs with nor listens to other workers at startup: tests and the
# fault run start and kill workers often, and there are no others to hear from.
QUIET_WORKER = ("--without-mingle", "--without-gossip")
# Requests may wait on a hung broker or a killed database session for a while; stopping
# should not wait long for them.
PATIENT_WEB = ("--timeout", "60", "--graceful-timeout", "5")


@dataclass
class ManagedProcess:
    """One child process, its log, and what "ready" means for it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: Callable[[ManagedProcess], object] | None = None  # None: ready once started
    ready_timeout: float = 90
    cwd: Path = PROJECT_ROOT
    process: subprocess.Popen | None = None
    starts: int = 0
    log_offset: int = 0  # where the current start's output begins in log()
    terminated: bool = False

    def start(self) -> None:
        """Start, or start again (the log is then appended to), and wait until ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = len(self.log()) if self.starts else 0
        with self.log_path.open("ab" if self.starts else "wb") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.terminated = False
        if self.ready is not None:
            wait_until(
                lambda: self.ready(self), self.ready_timeout, f"{self.name} to be ready", self
            )

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

    def terminate(self) -> None:
        """SIGTERM to the process group we created (once: a second TERM can turn a
        graceful shutdown into a hasty one)."""
        if self.alive() and not self.terminated:
            _signal_group(self.pid, signal.SIGTERM)
            self.terminated = True

    def stop(self, grace: float = 10) -> None:
        """TERM the process group, wait up to `grace` seconds, then KILL what is left."""
        if self.process is None:
            return
        members = [self.pid, *(child.pid for child in self.children())]
        self.terminate()
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

    def log_since_start(self) -> str:
        return self.log()[self.log_offset :]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def celery_ready(process: ManagedProcess) -> bool:
    """The worker logged "<hostname> ready." since it was (re)started."""
    return " ready." in process.log_since_start()


@dataclass
class Stack:
    """gunicorn, Celery workers and beats, all started from one environment, logs in
    `workdir`. Each process's DATABASE_URL names its role as application_name
    ("snapagg-web", "snapagg-worker", ...), so pg_stat_activity says whose a session is."""

    env: dict[str, str]
    workdir: Path
    wsgi_app: str = WSGI_APP
    celery_app: str = CELERY_APP
    stop_grace: float = 10
    web_port: int = field(default_factory=free_port)
    web: ManagedProcess | None = None
    workers: list[ManagedProcess] = field(default_factory=list)
    beats: list[ManagedProcess] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def worker(self) -> ManagedProcess | None:
        """The first worker (most runs have one)."""
        return self.workers[0] if self.workers else None

    def role_env(self, role: str) -> dict[str, str]:
        env = dict(self.env)
        url = env.get("DATABASE_URL", "")
        if url.startswith(("postgres://", "postgresql://")):
            separator = "&" if urlsplit(url).query else "?"
            env["DATABASE_URL"] = f"{url}{separator}application_name=snapagg-{role}"
        return env

    def processes(self) -> dict[str, ManagedProcess]:
        started = [self.web, *self.workers, *self.beats]
        return {process.name: process for process in started if process is not None}

    def start_web(self, *, workers: int = 2, args: Sequence[str] = PATIENT_WEB) -> ManagedProcess:
        """gunicorn as in the Procfile; ready when /api/health/ answers 200."""
        argv = [
            sys.executable, "-m", "gunicorn", self.wsgi_app,
            "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(workers), *args,
        ]  # fmt: skip
        self.web = self._process("web", argv, role="web", ready_timeout=60)
        self.web.ready = lambda _: http_ok(f"{self.base_url}/api/health/")
        self.web.start()
        return self.web

    def start_worker(
        self,
        *,
        name: str = "worker",
        hostname: str | None = None,
        pool: str = "prefork",
        concurrency: int = 2,
        args: Sequence[str] = QUIET_WORKER,
        ready: Callable[[ManagedProcess], object] = celery_ready,
        ready_timeout: float = 90,
    ) -> ManagedProcess:
        """A Celery worker; ready when `ready` says so (by default, when it logs that it
        is). Start it again after a kill with its own start()."""
        argv = [
            sys.executable, "-m", "celery", "-A", self.celery_app, "worker",
            "-P", pool, "-c", str(concurrency), "-l", "info",
            "-n", hostname or f"{name}@localhost", *args,
        ]  # fmt: skip
        worker = self._process(name, argv, role="worker", ready_timeout=ready_timeout)
        worker.ready = ready
        self.workers.append(worker)  # before start(): stop() must find it if start fails
        worker.start()
        return worker

    def start_beat(self, *, max_interval: float = 1) -> ManagedProcess:
        """A Celery beat that looks at its schedule every `max_interval` seconds."""
        name = f"beat-{len(self.beats) + 1}"
        argv = [
            sys.executable, "-m", "celery", "-A", self.celery_app, "beat", "-l", "info",
            "--max-interval", f"{max_interval:g}", "-s", str(self.workdir / f"{name}.schedule"),
        ]  # fmt: skip
        beat = self._process(name, argv, role="beat")
        self.beats.append(beat)
        beat.start()
        return beat

    def manage(self, *args: str, timeout: float | None = 300) -> str:
        """Run a management command with the stack's environment; its output."""
        return manage_run(*args, env=self.role_env("manage"), timeout=timeout)

    def stop(self) -> None:
        """TERM everything at once (shutdowns overlap), then wait for and KILL each."""
        processes = [*self.beats, *self.workers, self.web]
        for process in processes:
            if process is not None:
                process.terminate()
        for process in processes:
            if process is not None:
                process.stop(self.stop_grace)

    def _process(
        self, name: str, argv: list[str], *, role: str, ready_timeout: float = 90
    ) -> ManagedProcess:
        return ManagedProcess(
            name=name,
            argv=argv,
            env=self.role_env(role),
            log_path=self.workdir / f"{name}.log",
            ready_timeout=ready_timeout,
        )


def manage_run(*args: str, env: dict[str, str], timeout: float | None = None) -> str:
    """`manage.py args` in its own process; its standard output. RuntimeError with the
    end of its output if it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def isolated_environment(
    *,
    database_url: str,
    redis: PrivateRedis,
    workdir: Path,
    extra: dict[str, str] | None = None,
    settings_module: str = SETTINGS_MODULE,
) -> dict[str, str]:
    """This process's environment without its DJANGO_* and CELERY_* settings, pointed at
    one database and a private Redis (broker on db 0, cache on db 1), files under
    `workdir`: nothing the developer's own processes use."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    return {
        **keep,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis.url(0),
        "CACHE_URL": redis.url(1),
        "SNAPAGG_VAR_DIR": str(workdir / "var"),
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }
