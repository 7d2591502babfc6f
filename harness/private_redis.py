"""A redis-server of our own, for runs and tests that kill, pause and restart Redis: never
the shared one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis

from harness.ports import free_port
from harness.waiting import wait_until


@dataclass
class PrivateRedis:
    """A redis-server child on a free port with no persistence: killing it loses
    everything in it, which is the point. It keeps its port across restarts."""

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

    def queued(self, queue: str) -> int:
        """Messages waiting in a Celery queue (0 if Redis does not answer)."""
        try:
            return int(self.client().llen(queue))
        except redis.RedisError:
            return 0

    def reserved(self) -> int:
        """Messages delivered to a worker and not yet acknowledged (kombu's unacked hash)."""
        try:
            return int(self.client().hlen("unacked"))
        except redis.RedisError:
            return 0
