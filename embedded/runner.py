"""Run one command with the embedded servers it lacks, and stop them when it ends.

Signals: the runner passes the signals that end a run (SIGINT, SIGTERM, SIGHUP) to the
command exactly once, then stops the servers after the command has exited, so that web,
worker and beat never see their database or broker vanish under them.
- In a terminal's foreground (`make run`, Ctrl-C), the command stays in the runner's process
  group: the terminal itself sends it Ctrl-C (and it keeps the terminal for `pytest --pdb`);
  the runner passes on SIGTERM only, which no terminal sends.
- Otherwise (a script, CI, `kill`), the command gets its own process group and the runner
  passes each of those signals to that whole group, as a terminal would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

from embedded.services import postgres_start, postgres_stop, redis_start, redis_stop, server_leased

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _in_terminal_foreground() -> bool:
    """True when Ctrl-C at a terminal reaches this process group directly."""
    try:
        tty = os.open("/dev/tty", os.O_RDONLY)
    except OSError:  # no controlling terminal
        return False
    try:
        return os.tcgetpgrp(tty) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(tty)


@dataclass
class _Signals:
    shares_terminal: bool
    child: subprocess.Popen | None = None
    stopping: bool = False
    previous: dict[int, object] = field(default_factory=dict)

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self.previous[signum] = signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return  # the servers are stopping: let them finish
        if self.child is None:
            # While the servers start: give up; the leases stop whatever has started.
            self.stopping = True
            raise KeyboardInterrupt
        if self.child.poll() is not None:
            return
        if not self.shares_terminal:
            os.killpg(self.child.pid, signum)
        elif signum == signal.SIGTERM:
            self.child.send_signal(signum)


def _servers_enter(
    stack: ExitStack, *, env: dict[str, str], var_dir: Path, database: str, redis_db: int
) -> list[str]:
    """Starts (or joins) each server whose URL env lacks; exports its URL into env."""
    started = []
    if not env.get("DATABASE_URL"):
        data_dir = var_dir / "postgres"
        env["DATABASE_URL"] = stack.enter_context(
            server_leased(
                lease_dir=var_dir / "leases" / "postgres",
                start=partial(postgres_start, data_dir=data_dir, database=database),
                stop=partial(postgres_stop, data_dir=data_dir),
            )
        )
        started.append(f"PostgreSQL (data in {data_dir})")
    if not env.get("CELERY_BROKER_URL"):
        run_dir = var_dir / "redis"
        env["CELERY_BROKER_URL"] = stack.enter_context(
            server_leased(
                lease_dir=var_dir / "leases" / "redis",
                start=partial(redis_start, run_dir=run_dir, db=redis_db),
                stop=partial(redis_stop, run_dir=run_dir),
            )
        )
        started.append(f"Redis (socket in {run_dir})")
    return started


def services_run(*, command: list[str], var_dir: Path, database: str, redis_db: int) -> int:
    """Runs command with DATABASE_URL and CELERY_BROKER_URL set; returns its exit status."""
    env = dict(os.environ)
    env["SNAPAGG_VAR_DIR"] = str(var_dir)
    signals = _Signals(shares_terminal=_in_terminal_foreground())
    signals.install()
    try:
        with ExitStack() as stack:
            started = _servers_enter(
                stack, env=env, var_dir=var_dir, database=database, redis_db=redis_db
            )
            if started:
                print(f"embedded: {' and '.join(started)}", file=sys.stderr, flush=True)
            signals.child = subprocess.Popen(
                command, env=env, process_group=None if signals.shares_terminal else 0
            )
            returncode = signals.child.wait()
            signals.stopping = True
        return 128 - returncode if returncode < 0 else returncode
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        signals.restore()
