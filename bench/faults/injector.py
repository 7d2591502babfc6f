"""Faults, injected on a seeded schedule while the load runs."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import psycopg
import redis

from harness.databases import connect
from harness.hooked_celery_markers import MARKER_DB, MARKER_PREFIX, marker_key
from harness.private_postgres import PrivatePostgres
from harness.private_redis import PrivateRedis
from harness.processes import Stack
from harness.waiting import poll, wait_until

# The Celery queue of the run: the fault run's processes get no CELERY_QUEUE, so the default.
QUEUE = "snapagg"
SNAPSHOT_LOCK_KEY = zlib.crc32(b"snapagg.snapshot_run")  # common.db.advisory_lock_key

FAULT_KINDS = [
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
]


@dataclass
class Fault:
    kind: str
    at_progress: float
    started: float = 0.0
    ended: float = 0.0
    done: bool = False
    detail: dict = field(default_factory=dict)


def schedule_build(*, seed: int, repeats: int) -> list[Fault]:
    """Each kind `repeats` times, in a seeded order, spread over 5%..85% of the load."""
    rng = random.Random(seed * 7919 + 1)
    kinds = [kind for kind in FAULT_KINDS for _ in range(repeats)]
    rng.shuffle(kinds)
    marks = sorted(rng.uniform(0.05, 0.85) for _ in kinds)
    return [Fault(kind=kind, at_progress=mark) for kind, mark in zip(kinds, marks, strict=True)]


# A worker backend inside an apply: it holds the claim's row lock on the batch table and not
# the snapshot lock. A backend inside a snapshot run: it holds the snapshot advisory lock.
_APPLY_BACKENDS = """
SELECT a.pid, a.application_name, left(a.query, 120), a.client_port
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.application_name = 'snapagg-worker' AND a.xact_start IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
              WHERE l.pid = a.pid AND c.relname = 'events_ingestbatch'
                AND l.mode = 'RowExclusiveLock')
  AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory')
"""
_SNAPSHOT_BACKENDS = """
SELECT l.pid, a.application_name, left(a.query, 120)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.objid = %s AND l.granted
  AND a.datname = current_database()
"""


class Injector(threading.Thread):
    def __init__(
        self,
        *,
        stack: Stack,
        database_url: str,
        redis: PrivateRedis,
        schedule: list[Fault],
        progress: Callable[[], float],
        operator_token: str,
        checkpoint: Callable[[str], None],
        load_finished: threading.Event,
        outage_seconds: float,
        post_batch: Callable[[list[dict]], None],
        postgres: PrivatePostgres | None = None,
        gap_seconds: float = 2.0,
    ) -> None:
        super().__init__(name="injector", daemon=True)
        self.stack, self.redis, self.schedule = stack, redis, schedule
        self.database_url = database_url
        self.progress, self.operator_token = progress, operator_token
        self.checkpoint, self.load_finished = checkpoint, load_finished
        self.outage_seconds = outage_seconds
        self.gap_seconds = gap_seconds
        self.post_batch = post_batch
        self.postgres = postgres
        self.pokes = 0
        self.clock0 = time.monotonic()
        self.errors: list[str] = []
        self.snapshot_posts: Counter = Counter()

    def run(self) -> None:
        for fault in self.schedule:
            while self.progress() < fault.at_progress and not self.load_finished.is_set():
                time.sleep(0.1)
            fault.started = time.monotonic()
            fault.detail["at_time"] = time.strftime("%H:%M:%S")
            fault.detail["under_load"] = not self.load_finished.is_set()
            try:
                getattr(self, fault.kind)(fault)
                fault.done = True
            except Exception as exc:  # recorded in the report; the run goes on
                self.errors.append(f"{fault.kind}: {type(exc).__name__}: {exc}")
            fault.ended = time.monotonic()
            self.checkpoint(f"after {fault.kind}")
            time.sleep(self.gap_seconds)  # let each fault's effects show before the next

    # --- the worker ------------------------------------------------------------------------

    def worker_child_kill(self, fault: Fault) -> None:
        """SIGKILL a pool child while it is inside an apply transaction, as its own marker
        says (harness/hooked_celery.py: set once the day totals are locked, cleared after
        the last write, before the commit). The marker left behind by the dead child
        proves the kill landed inside the apply; without one within 30 s the fault fails."""
        stop = threading.Event()
        poker = threading.Thread(target=self._poke_ingest, args=(stop,), daemon=True)
        poker.start()  # applies to catch, even if the load is quiet or over
        try:
            found = poll(self._child_marked_in_apply, 30, interval=0.002)
            if found is None:
                raise RuntimeError("no pool child was seen inside an apply within 30 s")
            victim, batch_id = found
            log_before = len(self.stack.worker.log())
            psutil.Process(victim).kill()
        finally:
            stop.set()
            poker.join()
        markers = self.redis.client(MARKER_DB)
        left = markers.get(marker_key(victim))
        # The worker's main process notices, rejects the message for redelivery
        # (reject_on_worker_lost) and starts a new child.
        noticed = True
        try:
            wait_until(
                lambda: "WorkerLostError" in self.stack.worker.log()[log_before:], 30, "notice"
            )
        except TimeoutError:
            noticed = False
        # Any marker left proves the kill landed inside an apply (each apply clears its own
        # before its commit). It may name a later batch than the one seen: an apply task
        # that keeps going sets the next batch's marker right after clearing the last.
        fault.detail |= {
            "pid": victim,
            "batch": int(left) if left is not None else batch_id,
            "killed_inside_apply": left is not None,
            "worker_lost_logged": noticed,
        }

    def _child_marked_in_apply(self) -> tuple[int, int] | None:
        children = {child.pid for child in self.stack.worker.children()}
        markers = self.redis.client(MARKER_DB)
        try:
            keys = markers.keys(f"{MARKER_PREFIX}*")
            for key in keys:
                pid = int(key.decode().removeprefix(MARKER_PREFIX))
                batch = markers.get(key)
                if pid in children and batch is not None:
                    return pid, int(batch)
        except redis.RedisError:
            return None
        return None

    def _child_in_apply(self, timeout: float) -> tuple[int | None, str | None]:
        with connect(self.database_url, autocommit=True) as db:
            found = poll(lambda: self._apply_child(db), timeout, interval=0.005)
        return found or (None, None)

    def _apply_child(self, db: psycopg.Connection) -> tuple[int, str] | None:
        """A pool child whose database session is inside an apply, and its query."""
        ports = {port: query for _, _, query, port in db.execute(_APPLY_BACKENDS).fetchall()}
        if not ports:
            return None
        for child in self.stack.worker.children():
            for conn in _tcp_connections(child):
                if conn.laddr and conn.laddr.port in ports:
                    return child.pid, ports[conn.laddr.port]
        return None

    def worker_main_kill(self, fault: Fault) -> None:
        """SIGKILL the worker's main process (its children with it, as when a host dies),
        preferably while a child is inside an apply; then start the worker again."""
        found = poll(self._child_marked_in_apply, 10, interval=0.002)
        orphans = self.stack.worker.kill_main()
        left = self.redis.client(MARKER_DB).get(marker_key(found[0])) if found else None
        for pid in orphans:  # children of a dead main would otherwise run on unsupervised
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        time.sleep(1)
        self.stack.worker.start()  # again, waiting until it is ready
        fault.detail |= {"killed_inside_apply": left is not None, "orphans_killed": len(orphans)}

    # --- Redis -----------------------------------------------------------------------------

    def redis_restart(self, fault: Fault) -> None:
        """Kill Redis (no persistence) while messages are queued, start it again empty.

        The worker is paused (SIGSTOP) meanwhile, so that messages wait in the queue rather
        than being taken at once; it is resumed after the restart."""
        worker = [self.stack.worker.pid, *(c.pid for c in self.stack.worker.children())]
        for pid in worker:
            os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: self.redis.queued(QUEUE) > 0, 30, "messages in the queue")
            queued, reserved = self.redis.queued(QUEUE), self.redis.reserved()
            self.redis.restart()
        finally:
            for pid in worker:
                os.kill(pid, signal.SIGCONT)
        fault.detail |= {"messages_lost": queued + reserved, "queued": queued}

    def redis_down(self, fault: Fault) -> None:
        """Redis dead while clients post (connections refused)."""
        self.redis.kill()
        time.sleep(self.outage_seconds)
        self.redis.start()
        fault.detail |= {"seconds": self.outage_seconds}

    def redis_paused(self, fault: Fault) -> None:
        """Redis hung (SIGSTOP): connections accepted, never answered."""
        self.redis.pause()
        time.sleep(self.outage_seconds)
        self.redis.resume()
        fault.detail |= {"seconds": self.outage_seconds}

    # --- PostgreSQL ------------------------------------------------------------------------

    def pg_terminate_apply(self, fault: Fault) -> None:
        fault.detail |= self._terminate_first(
            _APPLY_BACKENDS, (), timeout=60, poke=self._poke_ingest
        )

    def pg_terminate_snapshot(self, fault: Fault) -> None:
        fault.detail |= self._terminate_first(
            _SNAPSHOT_BACKENDS, (SNAPSHOT_LOCK_KEY,), timeout=60, poke=self._poke_snapshots
        )

    def pg_restart_ingest(self, fault: Fault) -> None:
        """Restart the whole PostgreSQL server (stop -m immediate: as a crash, with
        recovery) while events are being posted and applied."""
        server = self._server()
        stop = threading.Event()
        poker = threading.Thread(target=self._poke_ingest, args=(stop,), daemon=True)
        poker.start()
        try:
            with connect(self.database_url, autocommit=True) as db:
                row = poll(lambda: db.execute(_APPLY_BACKENDS).fetchone(), 30, interval=0.002)
            started = time.monotonic()
            server.restart(mode="immediate")
        finally:
            stop.set()
            poker.join()
        fault.detail |= {
            "during_an_apply": row is not None,
            "seconds_down": round(time.monotonic() - started, 2),
        }

    def pg_restart_snapshot(self, fault: Fault) -> None:
        """Restart the whole PostgreSQL server while a snapshot run holds its lock."""
        server = self._server()
        stop = threading.Event()
        poker = threading.Thread(target=self._poke_snapshots, args=(stop,), daemon=True)
        poker.start()
        try:
            with connect(self.database_url, autocommit=True) as db:
                row = poll(
                    lambda: db.execute(_SNAPSHOT_BACKENDS, (SNAPSHOT_LOCK_KEY,)).fetchone(),
                    60,
                    interval=0.002,
                )
            if row is None:
                raise RuntimeError("no snapshot run was seen within 60 s")
            started = time.monotonic()
            server.restart(mode="immediate")
        finally:
            stop.set()
            poker.join()
        fault.detail |= {
            "snapshot_backend": row[1],
            "seconds_down": round(time.monotonic() - started, 2),
        }

    def _server(self) -> PrivatePostgres:
        if self.postgres is None:
            raise RuntimeError("the run uses a shared PostgreSQL, which is never restarted")
        return self.postgres

    def _terminate_first(
        self, sql: str, params: tuple, *, timeout: float, poke: Callable[[threading.Event], None]
    ) -> dict:
        """Poll for a backend of our database matching `sql` and terminate it. Meanwhile
        `poke` keeps causing the work to be caught (applies, snapshot runs), in case the
        load is quiet or over."""
        stop = threading.Event()
        poker = threading.Thread(target=poke, args=(stop,), daemon=True)
        poker.start()
        try:
            with connect(self.database_url, autocommit=True) as db:
                row = poll(lambda: db.execute(sql, params).fetchone(), timeout, interval=0.002)
                if row is not None:
                    db.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    return {"terminated_pid": row[0], "who": row[1], "query": row[2]}
        finally:
            stop.set()
            poker.join()
        raise RuntimeError(f"no matching backend within {timeout}s")

    def _poke_snapshots(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._post_snapshot_run()
            time.sleep(0.05)

    def _poke_ingest(self, stop: threading.Event) -> None:
        """Post batches of new events (through the same ack log as the clients) so that
        applies run while we look for one."""
        while not stop.is_set():
            self.pokes += 1
            self.post_batch(
                [
                    {"event_id": f"poke-{self.pokes}-{i}", "event_time": _now_iso(), "value": "1"}
                    for i in range(500)
                ]
            )
            time.sleep(0.2)

    # --- snapshot runs ---------------------------------------------------------------------

    def manual_snapshots(self, fault: Fault) -> None:
        """Three manual runs at the same moment, on top of two beats: one wins, the others
        are told 409 (or run after it)."""
        threads = [threading.Thread(target=self._post_snapshot_run) for _ in range(3)]
        before = Counter(self.snapshot_posts)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        fault.detail |= dict(self.snapshot_posts - before)

    def _post_snapshot_run(self) -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.stack.web_port, timeout=60)
            connection.request(
                "POST",
                "/api/snapshots/run/",
                headers={"Authorization": f"Token {self.operator_token}"},
            )
            status = connection.getresponse().status
            connection.close()
        except (OSError, http.client.HTTPException):
            status = 0
        self.snapshot_posts[status] += 1


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _tcp_connections(process: psutil.Process) -> list:
    try:
        return process.net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
