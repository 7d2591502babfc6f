"""Plumbing shared by the benchmark commands: a dedicated PostgreSQL database, the stack
under test (processes from harness/), the facts about the machine, and the report (printed,
and recorded in docs/benchmarks.md, in place of the last run of the same command, with the
date, the machine and the exact command)."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from harness.databases import database_create, database_name, database_url_with_name
from harness.processes import ManagedProcess, Stack, manage_run

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"
LOG_DIR = ROOT / "var" / "bench"
BENCH_QUEUE = "snapagg_bench"
# Everything the application stores; TRUNCATE ... CASCADE also empties tables added later
# that point at these.
DATA_TABLES = [
    "events_event",
    "aggregation_contribution",
    "events_conflict",
    "events_quarantinedevent",
    "events_ingestbatch",
    "web_workerheartbeat",
    "aggregation_daytotal",
    "aggregation_daysourcetotal",
    "snapshots_snapshot",
    "snapshots_snapshotsource",
    "snapshots_snapshotrun",
]


# --- Environment and database --------------------------------------------------------------


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def bench_database_url() -> str:
    """BENCH_DATABASE_URL, or DATABASE_URL's database name + "_bench": benchmarks empty the
    database they use, so they never run on the development database itself."""
    explicit = os.environ.get("BENCH_DATABASE_URL", "")
    if explicit:
        if not _is_postgres(explicit):
            sys.exit("BENCH_DATABASE_URL must be a postgres:// URL.")
        return explicit
    base = os.environ.get("DATABASE_URL", "")
    if not _is_postgres(base):
        sys.exit(
            "Benchmarks need PostgreSQL: set DATABASE_URL=postgres://... (a database named "
            "<name>_bench is created beside it) or BENCH_DATABASE_URL."
        )
    return database_url_with_name(base, database_name(base) + "_bench")


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)


BENCH_RATE_LIMIT = "100000/second"


def bench_environment(*, database_url: str, broker_url: str | None = None) -> dict[str, str]:
    """Production-like settings (DEBUG off: no query log) for this process and its children."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "benchmark-only-secret-key-0123456789",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # The per-token limit is on, as in production (its cache INCR is part of each
        # request's cost), but high enough never to throttle the load.
        "INGEST_RATE_LIMIT": os.environ.get("INGEST_RATE_LIMIT", BENCH_RATE_LIMIT),
        "CELERY_QUEUE": BENCH_QUEUE,
        "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
        "PYTHONPATH": str(ROOT),
    }
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    os.environ.update(env)
    return env


def database_prepare(database_url: str, env: dict[str, str]) -> None:
    """Create the benchmark database if needed and migrate it."""
    database_create(database_url)
    manage_run("migrate", "--noinput", "-v0", env=env)


def django_setup() -> None:
    import django

    django.setup()


def data_reset() -> None:
    """Empty every application table (metrics, users and schedules stay)."""
    from django.db import connection

    with connection.cursor() as cursor:
        # The benchmark's own database: snapshots may be emptied here (snapshots 0006).
        cursor.execute("SET snapagg.allow_truncate = 'on'")
        cursor.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")
        cursor.execute("RESET snapagg.allow_truncate")


def vacuum_analyze() -> None:
    """What autovacuum would have done on a database that grew over time; then a
    checkpoint, so that writing out a freshly loaded history does not land in the timings
    that follow (a database that grew over time has long written it)."""
    from django.db import DatabaseError, connection

    with connection.cursor() as cursor:
        for table in DATA_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
        try:
            cursor.execute("CHECKPOINT")  # needs a superuser or the pg_checkpoint role
        except DatabaseError as exc:
            print(f"note: no CHECKPOINT before timing ({exc}); figures may include I/O")


def api_token(username: str = "bench") -> str:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apikeys.selectors import api_key_role_scopes
    from apikeys.services import api_key_create

    user, _ = get_user_model().objects.get_or_create(username=username)
    scopes = api_key_role_scopes(user=user)
    return api_key_create(
        user=user, name="bench", scopes=scopes, expires_at=None, now=timezone.now()
    )[1]


# --- Measuring -----------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


# Taken when a benchmark command starts (it imports this module first).
_LOAD_AT_START = load_average()
_STARTED = dt.datetime.now(dt.UTC)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), while it is still running."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def own_peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def postgres_backend_peaks() -> list[float]:
    """Peak memory of this database's other backends (it includes the shared buffers each
    one touched, so it overstates what a backend owns)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    return [peak for pid in pids if (peak := peak_rss_mib(pid)) is not None]


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


# --- Processes under test ------------------------------------------------------------------


# Options of the Procfile's web line that are the deployment's, not the machine's: a
# benchmark starts gunicorn with them (and its own bind address, log and worker count).
_LOCAL_WEB_OPTIONS = {"--bind": 1, "--access-logfile": 1, "--workers": 1}


def procfile_web_options(procfile: Path = ROOT / "Procfile") -> list[str]:
    """The gunicorn options of the Procfile's `web:` line (worker class, threads, backlog,
    ...) without --bind, --access-logfile and --workers: the benchmarks serve with what
    is deployed."""
    line = re.search(r"^web:\s*(.+)$", procfile.read_text(), re.MULTILINE)
    if line is None:
        raise RuntimeError(f"{procfile} has no web: line")
    words = shlex.split(line.group(1))
    words = words[words.index("snapagg_project.wsgi") + 1 :]
    options: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        name = word.split("=", 1)[0]
        if name in _LOCAL_WEB_OPTIONS:
            index += 1 if "=" in word else 1 + _LOCAL_WEB_OPTIONS[name]
            continue
        options.append(word)
        index += 1
    return options


def procfile_web_workers(procfile: Path = ROOT / "Procfile") -> int:
    line = re.search(r"^web:.*--workers[ =](\d+)", procfile.read_text(), re.MULTILINE)
    return int(line.group(1)) if line else 1


def stack_start(env: dict[str, str], *, web_workers: int, celery_workers: int) -> Stack:
    """gunicorn and Celery workers as in the Procfile (`-P prefork -c 4`) on the benchmark
    database and queue, with logs under var/bench/; ready once each worker's first
    heartbeat is stored."""
    from snapagg_project.celery import app

    app.control.purge()
    stack = Stack(env=env, workdir=LOG_DIR, stop_grace=30)
    try:
        stack.start_web(
            workers=web_workers,
            args=[
                *procfile_web_options(),
                "--access-logfile",
                str(LOG_DIR / "web-access.log"),
            ],
        )
        for index in range(celery_workers):
            hostname = f"bench{index}@{socket.gethostname()}"
            stack.start_worker(
                name=f"worker{index}",
                hostname=hostname,
                pool="prefork",
                concurrency=4,
                args=(),
                ready=_heartbeat_stored(hostname),
                ready_timeout=60,
            )
    except BaseException:
        stack.stop()
        raise
    return stack


def _heartbeat_stored(hostname: str) -> Callable[[ManagedProcess], bool]:
    from web.models import WorkerHeartbeat

    return lambda _: WorkerHeartbeat.objects.filter(hostname=hostname).exists()


def stack_python_pids(stack: Stack) -> dict[str, int]:
    """The processes that run application code: gunicorn's workers, Celery's workers."""
    pids: dict[str, int] = {}
    for name, process in stack.processes().items():
        if name == "web":
            for index, child in enumerate(psutil.Process(process.pid).children()):
                pids[f"web-worker{index + 1}"] = child.pid
        else:
            pids[name] = process.pid
    return pids


def stack_peaks(stack: Stack) -> list[tuple[str, float]]:
    """Peak memory of every process of the stack, children included."""
    found: list[tuple[str, float]] = []
    for name, process in stack.processes().items():
        tree = [psutil.Process(process.pid), *process.children()]
        for index, member in enumerate(tree):
            label = name if index == 0 else f"{name} child {index}"
            if name == "web":
                label = "gunicorn master" if index == 0 else f"gunicorn worker {index}"
            peak = peak_rss_mib(member.pid)
            if peak is not None:
                found.append((label, peak))
    return found


# --- Report -------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "?"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else "?"


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return f"{commit or '?'}{' + uncommitted changes' if dirty else ''}"


def _server_versions() -> str:
    from django.conf import settings
    from django.db import connection

    from snapagg_project.settings import redis_cache_location

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    versions = f"PostgreSQL {postgres}"
    broker = redis_cache_location(settings.CELERY_BROKER_URL)  # redis-py's form of it
    if broker:
        import redis

        info = redis.Redis.from_url(broker).info("server")
        versions += f", Redis {info['redis_version']}"
    return versions


def machine_line() -> str:
    memory_gib = psutil.virtual_memory().total / 2**30
    packages = ", ".join(
        f"{name} {_version(name)}" for name in ("django", "celery", "psycopg", "orjson", "gunicorn")
    )
    return (
        f"nproc {os.cpu_count()} ({_cpu_model()}), {memory_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"{packages}; {_server_versions()}; commit {_git_commit()}"
    )


_ORIGINAL_ENVIRONMENT = {
    name: os.environ[name]
    for name in ("BENCH_DATABASE_URL", "DATABASE_URL", "CELERY_BROKER_URL")
    if name in os.environ
}


def exact_command() -> str:
    """The command as it was typed, with the variables it read (passwords masked)."""
    variables = [
        f"{name}={shlex.quote(redacted(value))}" for name, value in _ORIGINAL_ENVIRONMENT.items()
    ]
    module = Path(sys.argv[0]).stem
    return " ".join([*variables, ".venv/bin/python", "-m", f"bench.{module}", *sys.argv[1:]])


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", ""] if self.title else []
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "---|" * len(self.headers))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def text(self) -> str:
        widths = [
            max(len(str(cell)) for cell in column)
            for column in zip(self.headers, *self.rows, strict=False)
        ]
        lines = [self.title] if self.title else []
        for row in [self.headers, *self.rows]:
            lines.append(
                "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            )
        return "\n".join(lines)


@dataclass
class Report:
    """One benchmark's figures, each with its target and pass/short where there is one."""

    title: str
    figures: Table = field(
        default_factory=lambda: Table("", ["figure", "measured", "target", "result"])
    )
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load_before: str = field(default_factory=lambda: _LOAD_AT_START)
    started: dt.datetime = field(default_factory=lambda: _STARTED)

    def figure(self, name: str, measured: str, target: str = "", passed: bool | None = None):
        verdict = "" if passed is None else ("pass" if passed else "SHORT")
        self.figures.rows.append([name, measured, target, verdict])

    def memory(self, peaks: Iterable[tuple[str, float]]) -> None:
        self.tables.append(
            Table(
                "Peak memory (VmHWM) per process",
                ["process", "peak MiB"],
                [[name, f"{peak:.0f}"] for name, peak in peaks],
            )
        )

    def emit(self) -> None:
        """Print the figures, and record them in docs/benchmarks.md in place of the last
        run of the same command (unless BENCH_NO_RECORD is set)."""
        load_after = load_average()
        print(f"\n{self.title}\nload before {self.load_before}, after {load_after}\n")
        print(self.figures.text())
        for table in self.tables:
            print("\n" + table.text())
        for note in self.notes:
            print(f"- {note}")
        if os.environ.get("BENCH_NO_RECORD"):
            return
        replaced = benchmarks_md_record(self.markdown(load_after))
        verb = "replaced the last run of this command in" if replaced else "added to"
        print(f"\n{verb} {BENCHMARKS_MD.relative_to(ROOT)}")

    def markdown(self, load_after: str) -> str:
        options = " ".join(sys.argv[1:])
        header = [
            f"## {self.title}{f', `{options}`' if options else ''}"
            f" ({self.started:%Y-%m-%d %H:%M} UTC)",
            "",
            f"Command: `{exact_command()}`",
            "",
            f"Machine: {machine_line()}.",
            "",
            f"Load average (1/5/15 min) before: {self.load_before}; after: {load_after}.",
            "",
        ]
        body = [self.figures.markdown(), *[table.markdown() for table in self.tables]]
        notes = [f"- {note}" for note in self.notes]
        return "\n".join([*header, "\n\n".join(body), "", *notes, "", ""])


BENCHMARKS_HEADER = """# Benchmarks

The latest run of each benchmark command in `bench/` (see `bench/README.md`), with the
exact command, the machine (`nproc`, CPU, versions, commit) and the load average around the
run (the machine may be shared), so any figure can be reproduced. A run replaces the entry
of the same command (same module and options); earlier runs are in the history of this
file (`git log -p docs/benchmarks.md`).

"""
_COMMAND = re.compile(r"^Command: `.*? -m (bench\.[^`]*)`", re.MULTILINE)


def _command_key(section: str) -> str | None:
    """A section's benchmark and options, e.g. "bench.ingest --web-workers 1"."""
    found = _COMMAND.search(section)
    return found.group(1).strip() if found else None


def benchmarks_md_record(section: str) -> bool:
    """Put `section` in place of the one of the same command, or add it at the end. True
    if it replaced one."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else BENCHMARKS_HEADER
    preamble, *sections = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    key = _command_key(section)
    keys = [_command_key(existing) for existing in sections]
    if key in keys:
        sections[keys.index(key)] = section
    else:
        sections.append(section)
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    BENCHMARKS_MD.write_text(preamble + "".join(sections))
    return key in keys


# --- Profiling ------------------------------------------------------------------------------


@dataclass
class Profiler:
    """py-spy attached to running processes; writes collapsed stacks under var/bench/."""

    targets: dict[str, int]
    recorders: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> None:
        if not (Path(sys.executable).parent / "py-spy").exists():
            sys.exit("--profile needs py-spy: .venv/bin/pip install -e '.[bench]'")
        for name, pid in self.targets.items():
            self.recorders[name] = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                    "--rate", "1000", "--gil",
                    "--format", "raw", "--nonblocking", "-o", str(LOG_DIR / f"profile-{name}.txt"),
                ],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def stop(self) -> list[Table]:
        for recorder in self.recorders.values():
            recorder.send_signal(signal.SIGINT)
        for recorder in self.recorders.values():
            recorder.wait(timeout=60)
        return [profile_summary(name, LOG_DIR / f"profile-{name}.txt") for name in self.targets]


def profile_summary(name: str, path: Path, top: int = 15) -> Table:
    """Functions by share of samples: inclusive (anywhere on the stack) and self (on top)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue  # the tail of a frame name that held a line break (a SQL string)
        count = int(count_text)
        total += count
        frames = [frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
                  for frame in stack.split(";") if frame]  # fmt: skip
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
    table = Table(f"py-spy: {name} ({total} samples)", ["function", "inclusive", "self"])
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        table.rows.append([frame, f"{count / total:.0%}", f"{own.get(frame, 0) / total:.0%}"])
    for frame, count in sorted(own.items(), key=lambda item: -item[1])[:top]:
        table.rows.append([f"(self) {frame}", "", f"{count / total:.0%}"])
    return table


@dataclass
class CpuMeter:
    """CPU seconds of this process and of its PostgreSQL backend: on a shared machine they
    move far less with the neighbours' load than wall-clock time does."""

    own: float = 0.0
    backend: float = 0.0

    @staticmethod
    def _backend_process() -> psutil.Process:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return psutil.Process(cursor.fetchone()[0])

    def __enter__(self) -> CpuMeter:
        self._backend = self._backend_process()
        self._own_start = time.process_time()
        times = self._backend.cpu_times()
        self._backend_start = times.user + times.system
        return self

    def __exit__(self, *exc: object) -> None:
        self.own = time.process_time() - self._own_start
        times = self._backend.cpu_times()
        self.backend = times.user + times.system - self._backend_start


def backend_cpu_seconds() -> dict[int, float]:
    """CPU seconds so far of each of this database's other backends, by pid."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


class BackendCpuSampler:
    """CPU seconds spent by this database's other backends while in the block, counting
    those that connect and disconnect inside it (a command's own connection, which the
    process reading it cannot ask for its pid): read every `interval` seconds from a
    thread, each backend's last reading kept, so a backend's last `interval` before it
    exits may be missed."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.seconds = 0.0
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="backend-cpu", daemon=True)

    def _read(self) -> None:
        for pid, seconds in backend_cpu_seconds().items():
            self._last[pid] = seconds

    def _sample(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.interval):
                self._read()
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> BackendCpuSampler:
        self._first = backend_cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        self.seconds = sum(
            seconds - self._first.get(pid, 0.0) for pid, seconds in self._last.items()
        )


class FsyncProbe:
    """How long the disk takes to make 8 KB durable while the block runs: from a thread, an
    8 KB write and `fdatasync` every `interval` seconds to a scratch file in `directory`,
    each one timed. A synchronous commit waits for the same kind of flush of PostgreSQL's
    WAL, so when this stalls, every ingest acknowledgement in flight stalls with it."""

    def __init__(self, directory: Path, interval: float = 0.01) -> None:
        self.path = directory / f"fsync-probe-{os.getpid()}"
        self.interval = interval
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, name="fsync-probe", daemon=True)

    def _probe(self) -> None:
        block = b"\0" * 8192
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while not self._stop.wait(self.interval):
                os.pwrite(fd, block, 0)
                began = time.perf_counter()
                os.fdatasync(fd)
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FsyncProbe:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def same_device_as_postgres(directory: Path) -> bool | None:
    """Whether `directory` is on the device that holds PostgreSQL's data directory; None
    when that cannot be told (a remote server, or a role that may not read the setting)."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data_directory = cursor.fetchone()[0]
        return os.stat(data_directory).st_dev == os.stat(directory).st_dev
    except (DatabaseError, OSError):
        return None


def redis_stack_prepare(command: str) -> tuple[str, dict[str, str]]:
    """For a benchmark that runs web/worker processes through Redis (or exits naming
    `command` without it): the benchmark database URL and the processes' environment, with
    the database migrated and Django set up in this process."""
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith(("redis://", "rediss://", "redis+socket://")):
        sys.exit(f"{command} needs Redis: set CELERY_BROKER_URL=redis://...")
    database_url = bench_database_url()
    env = bench_environment(database_url=database_url, broker_url=broker)
    database_prepare(database_url, env)
    django_setup()
    apply_flag_down()
    return database_url, env


def apply_flag_down() -> None:
    """A worker stopped in the middle of an apply by an earlier run can leave the apply flag
    up (events/services/enqueue.py) until it expires; meanwhile new batches publish nothing
    and wait for the sweeper, which a benchmark stack does not run. Start with it down."""
    from events.services import enqueue

    flag = enqueue._publish_flag()
    if flag is not None:
        enqueue._publish_flag_lower(flag)
