"""A PostgreSQL server of our own (Debian's binaries: initdb and pg_ctl), for runs that
restart the whole server: never the machine's shared one.

Its data directory is a directory of its own under /tmp; it listens on 127.0.0.1 on a free
port with trust authentication, and it is tuned for throwaway data (no fsync, but commits are
acknowledged only once written to the WAL, so a server restart loses nothing). When this
process runs as root the server runs as the `postgres` OS user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.ports import free_port
from harness.waiting import wait_until


def postgres_bin_dir() -> Path | None:
    """Debian's newest PostgreSQL binaries, or those next to a pg_ctl on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


@dataclass
class PrivatePostgres:
    # A directory of its own under /tmp (handed to the postgres user when we are root; a
    # run's own 0700 work directory could not be entered by that user).
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="snapagg-pg-")))
    port: int = field(default_factory=free_port)
    bin_dir: Path | None = field(default_factory=postgres_bin_dir)
    restarts: int = 0

    @property
    def data_dir(self) -> Path:
        return self.workdir / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        """initdb (first time), then start and wait until it takes connections."""
        if self.bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries (apt-get install postgresql)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._own(self.workdir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C.UTF-8",
            )  # fmt: skip
        self._pg_ctl("start", "-w", "-t", "60")
        wait_until(self.ready, 60, "the private PostgreSQL to take connections")

    def restart(self, *, mode: str = "immediate") -> None:
        """Stop the whole server (`immediate`: as a crash, recovery on start) and start it
        again on the same port and data."""
        self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")
        self._pg_ctl("start", "-w", "-t", "60")
        wait_until(self.ready, 60, "the private PostgreSQL to come back")
        self.restarts += 1

    def stop(self) -> None:
        if self.bin_dir is not None and (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "60", check=False)

    def remove(self) -> None:
        """Stop it and delete its data."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def ready(self) -> bool:
        done = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} "
            # fsync off: the machine does not crash here, only the server, and the OS keeps
            # what was written. synchronous_commit stays on: a commit is acknowledged only
            # once in the WAL, so a server crash loses nothing acknowledged (turning it off
            # lost 26 acknowledged events at a restart: both checkers caught it).
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, *args,
            check=check,
        )  # fmt: skip

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        argv = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:  # PostgreSQL will not run as root
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, user="postgres", group="postgres")
