"""Fault-injection run: real processes, a bounded seeded load, faults, then a checker.

    .venv/bin/python -m bench.faults                      # the full run (100,000 events)
    .venv/bin/python -m bench.faults --quick              # the CI run: one fault of each kind

It starts its own PostgreSQL server (Debian's initdb/pg_ctl, a throwaway data directory,
a free port), which it restarts as a fault, and a private redis-server on a free port; it
never touches the machine's shared servers. With --database-url it uses that server's
database instead, and cannot restart it (the two PostgreSQL restart faults then fail).
Exit status 0 only if every promise held. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.faults.checker import Checkpoints, check_all
from bench.faults.injector import FAULT_KINDS, Fault, Injector, schedule_build
from bench.faults.load import HELD_METRIC, AckLog, Plan, load_run, plan_build, post_one_batch
from bench.faults.truth import truth_check, truth_violations
from harness.databases import (
    connect,
    database_create,
    database_drop,
)
from harness.hooked_celery_markers import MARKER_DB
from harness.private_postgres import PrivatePostgres
from harness.private_redis import PrivateRedis
from harness.processes import Stack, isolated_environment
from harness.waiting import wait_until

WORKER_HOSTNAME = "faults@localhost"

LOST_CHECKS = (
    "acked_ids_not_stored",
    "acked_ids_neither_counted_nor_held",
    "events_missing_from_totals",
    "batches_unapplied",
)
DOUBLE_CHECKS = ("events_counted_twice", "contributions_twice_for_a_batch_day")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="faults of each kind")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds the load should last (paced)"
    )
    parser.add_argument("--outage", type=float, default=4, help="seconds Redis stays down")
    parser.add_argument("--batch-max", type=int, default=400, help="largest batch posted")
    parser.add_argument("--round-every", type=int, default=6, help="every Nth batch: all at once")
    parser.add_argument("--settle-timeout", type=float, default=600)
    parser.add_argument("--quick", action="store_true", help="CI: 3,000 events, 1 of each")
    parser.add_argument(
        "--database-url", default=None, help="a shared server's database (no restarts)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument(
        "--min-hashed",
        type=int,
        default=100,
        help="fail unless this many snapshot rows were hashed",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.repeats, args.outage = min(args.events, 3000), 1, 3
        args.batch_max, args.round_every = 100, 3
        args.min_hashed = min(args.min_hashed, 10)
    if args.duration is None:
        # Room for every fault (each a few seconds, then a gap) while the load still runs.
        args.duration = max(60.0, 8.0 * len(FAULT_KINDS) * args.repeats)
    return args


class Run:
    def __init__(
        self, args: argparse.Namespace, workdir: Path, postgres: PrivatePostgres | None = None
    ) -> None:
        self.args, self.workdir, self.postgres = args, workdir, postgres
        self.redis = PrivateRedis(workdir / "redis")
        env = isolated_environment(
            database_url=args.database_url,
            redis=self.redis,
            workdir=workdir,
            extra={
                "DEBUG": "0",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "SECURE_SSL_REDIRECT": "0",
                "SWEEP_AFTER_SECONDS": "5",
                "SWEEP_INTERVAL_SECONDS": "2",
                "SNAPSHOT_INTERVAL_SECONDS": "3",
                "WORKER_HEARTBEAT_SECONDS": "1",
                "REPORTING_TIMEZONE": "UTC",
                # The worker is the production app with test-only markers around the apply
                # (harness/hooked_celery.py), which prove a kill landed inside one; each
                # apply is held 20 ms inside its transaction so kills can land there.
                "SNAPAGG_HOOK_APPLY_MARKER_REDIS": self.redis.url(MARKER_DB),
                "SNAPAGG_HOOK_APPLY_DELAY_SECONDS": "0.02",
            },
        )
        self.stack = Stack(env=env, workdir=workdir, celery_app="harness.hooked_celery")
        self.log = AckLog()
        self.progress = Counter()
        self.checkpoints = Checkpoints()
        self.checkpoint_lock = threading.Lock()
        self.checkpoint_errors: list[str] = []

    # --- setup -----------------------------------------------------------------------------

    def setup(self) -> tuple[list[str], str]:
        database_create(self.args.database_url, replace=True)
        self.redis.start()
        self.stack.manage("migrate", "--noinput", timeout=600)
        tokens = [
            self.stack.manage("create_api_token", f"client-{n}").strip()
            for n in range(self.args.clients)
        ]
        operator = self.stack.manage(
            "create_api_token", "operator", "--scopes", "ingest,read,operate"
        ).strip()
        with connect(self.args.database_url, autocommit=True) as db:
            db.execute("UPDATE auth_user SET is_staff = true WHERE username = 'operator'")
            db.execute(
                "INSERT INTO aggregation_metric (name, description, unit, allowed_lateness,"
                " too_late_policy, is_default, created_at) VALUES"
                " (%s, 'Too-late events held for review.', '', interval '1 hour',"
                " 'quarantine', false, now())",
                (HELD_METRIC,),
            )
        self.stack.start_web()
        self.stack.start_worker(hostname=WORKER_HOSTNAME)
        self.stack.start_beat()
        self.stack.start_beat()  # two beats at once, for the whole run
        return tokens, operator

    # --- the run ---------------------------------------------------------------------------

    def checkpoint(self, label: str, *, patience: float = 60) -> None:
        """Hash every snapshot row. The database may be mid-fault (a terminated session, a
        restart): retry for `patience` seconds; a checkpoint never taken fails the run."""
        deadline = time.monotonic() + patience
        while True:
            try:
                with self.checkpoint_lock, connect(self.args.database_url) as db:
                    self.checkpoints.take(db)
                return
            except Exception as exc:
                if time.monotonic() >= deadline:
                    self.checkpoint_errors.append(f"{label}: {type(exc).__name__}: {exc}")
                    return
                time.sleep(0.5)

    def load_with_faults(self, plan: Plan, tokens: list[str], operator: str) -> list[Fault]:
        schedule = schedule_build(seed=self.args.seed, repeats=self.args.repeats)
        finished = threading.Event()
        injector = Injector(
            stack=self.stack,
            database_url=self.args.database_url,
            redis=self.redis,
            schedule=schedule,
            progress=lambda: self.progress["events"] / plan.events,
            operator_token=operator,
            checkpoint=self.checkpoint,
            load_finished=finished,
            outage_seconds=self.args.outage,
            post_batch=lambda events: post_one_batch(
                port=self.stack.web_port, token=tokens[0], events=events, plan=plan, log=self.log
            ),
            postgres=self.postgres,
        )
        clients = load_run(
            plan=plan,
            port=self.stack.web_port,
            tokens=tokens,
            events_per_second=plan.events / self.args.duration,
            log=self.log,
            progress=self.progress,
        )
        injector.start()
        ticker = threading.Thread(target=self._periodic_checkpoints, args=(finished,))
        ticker.start()
        for client in clients:
            client.join()
        finished.set()
        injector.join()
        ticker.join()
        self.injector_errors = injector.errors
        self.snapshot_posts = dict(injector.snapshot_posts)
        return schedule

    def _periodic_checkpoints(self, finished: threading.Event) -> None:
        while not finished.wait(5):
            self.checkpoint("periodic")

    def settle(self, operator: str) -> dict[str, float]:
        """Wait for the sweeper to apply everything, then take a last snapshot run."""
        started = time.monotonic()
        with connect(self.args.database_url, autocommit=True) as db:

            def unapplied() -> int:
                sql = "SELECT count(*) FROM events_ingestbatch WHERE status = 'received'"
                return db.execute(sql).fetchone()[0]

            wait_until(lambda: unapplied() == 0, self.args.settle_timeout, "every batch applied")
            applied_after = time.monotonic() - started
            wait_until(lambda: self._snapshot_run_now(operator), 120, "a final snapshot run")
        return {
            "seconds_until_all_applied": round(applied_after, 1),
            "seconds_until_final_snapshot": round(time.monotonic() - started, 1),
        }

    def _snapshot_run_now(self, token: str) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.stack.web_port, timeout=60)
            connection.request(
                "POST", "/api/snapshots/run/", headers={"Authorization": f"Token {token}"}
            )
            return connection.getresponse().status == 200
        except OSError:
            return False

    def check(self, plan: Plan) -> dict:
        self.checkpoint("final")
        with connect(self.args.database_url, autocommit=True) as db:
            result = check_all(db, self.log, plan, self.checkpoints)
            result["truth"] = truth_check(
                db, self.log, held_metric=HELD_METRIC, held_lateness=dt.timedelta(hours=1)
            )
        return result


def _api_during_outages(log: AckLog, schedule: list[Fault]) -> dict[str, dict]:
    """Status codes and latency of requests that started while Redis was down or hung."""
    summary = {}
    for kind in ("redis_down", "redis_paused"):
        windows = [(f.started, f.ended) for f in schedule if f.kind == kind and f.done]
        inside = [r for r in log.requests if any(a <= r.started <= b for a, b in windows)]
        latencies = sorted(r.finished - r.started for r in inside)
        summary[kind] = {
            "requests": len(inside),
            "statuses": dict(Counter(r.status for r in inside)),
            "latency_p50_ms": _percentile_ms(latencies, 0.50),
            "latency_p99_ms": _percentile_ms(latencies, 0.99),
            "latency_max_ms": _percentile_ms(latencies, 1.0),
        }
    return summary


def _percentile_ms(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return round(values[min(int(share * len(values)), len(values) - 1)] * 1000, 1)


def _worker_log_figures(stack: Stack) -> dict[str, int]:
    text = stack.worker.log() if stack.worker else ""
    return {
        "tasks_lost_with_a_killed_child": text.count("raised error: WorkerLostError"),
        "apply_retries_after_database_errors": text.count("Retry in"),
        "restarts": stack.worker.starts - 1 if stack.worker else 0,
    }


def _server_errors(stack: Stack) -> dict:
    """5xx answers other than our deliberate 503: API.md says a 5xx is always a bug."""
    text = stack.web.log() if stack.web else ""
    first = text.find("Internal Server Error")
    return {
        "count": text.count("Internal Server Error"),
        "first": text[first : first + 4000] if first >= 0 else "",
    }


def report_build(run: Run, plan: Plan, schedule: list[Fault], settle: dict, check: dict) -> dict:
    violations = check["violations"] | truth_violations(check["truth"])
    violations["checkpoint_errors"] = len(run.checkpoint_errors)
    violations["snapshot_rows_hashed_below_minimum"] = max(
        run.args.min_hashed - check["figures"]["snapshot_rows_checked_across_checkpoints"], 0
    )
    violations["kills_not_inside_an_apply"] = sum(
        1
        for f in schedule
        if f.kind == "worker_child_kill" and not f.detail.get("killed_inside_apply")
    )
    server_errors = _server_errors(run.stack)
    violations["api_answers_500"] = sum(1 for r in run.log.requests if r.status == 500) + (
        run.snapshot_posts.get(500, 0)
    )
    faults = Counter(f.kind for f in schedule if f.done)
    return {
        "command": "python -m bench.faults " + " ".join(sys.argv[1:]),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "seed": run.args.seed,
        "events_sent": run.log.events_sent,
        "events_planned": plan.events,
        "clients": run.args.clients,
        "simultaneous_rounds": plan.rounds,
        "duplicates_sent": plan.duplicates,
        "conflicts_sent": plan.conflicts,
        "invalid_sent": plan.invalid,
        "batches_acked": run.log.batches_acked,
        "batches_given_up": run.log.batches_given_up,
        "acked_event_ids": len(run.log.acked),
        "response_counts": dict(run.log.response_counts),
        "request_statuses": dict(Counter(r.status for r in run.log.requests)),
        "faults_injected": {kind: faults.get(kind, 0) for kind in FAULT_KINDS},
        "fault_details": [
            {"kind": f.kind, "at": round(f.at_progress, 3), "done": f.done, **f.detail}
            for f in schedule
        ],
        "fault_errors": run.injector_errors,
        "manual_snapshot_posts": run.snapshot_posts,
        "api_during_redis_outages": _api_during_outages(run.log, schedule),
        "worker": _worker_log_figures(run.stack),
        "settle": settle,
        "lost": sum(violations[name] for name in LOST_CHECKS),
        "double_counted": sum(violations[name] for name in DOUBLE_CHECKS),
        "violations": violations,
        "figures": check["figures"],
        "truth_figures": check["truth"]["figures"],
        "checkpoint_errors": run.checkpoint_errors,
        "server_errors": server_errors,
    }


def report_ok(report: dict) -> bool:
    every_fault = all(report["faults_injected"][kind] >= 1 for kind in FAULT_KINDS)
    return every_fault and not any(report["violations"].values())


def report_print(report: dict) -> None:
    print(f"\nfault run: {report['command']}")
    for key in ("events_sent", "acked_event_ids", "batches_acked", "batches_given_up"):
        print(f"  {key:40} {report[key]}")
    print("  faults injected:")
    for kind, count in report["faults_injected"].items():
        print(f"    {kind:38} {count}")
    print("  API while Redis was unavailable:")
    for kind, figures in report["api_during_redis_outages"].items():
        print(f"    {kind:38} {figures}")
    print(f"  {'settle':40} {report['settle']}")
    print("  promises:")
    for name, count in report["violations"].items():
        print(f"    {name:38} {count}  {'ok' if count == 0 else 'VIOLATED'}")
    print(f"  lost {report['lost']}, double-counted {report['double_counted']}")
    if report["fault_errors"]:
        print(f"  fault errors: {report['fault_errors']}")
    print("PASS" if report_ok(report) else "FAIL")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    workdir = Path(tempfile.mkdtemp(prefix="snapagg-faults-"))
    postgres = None
    if args.database_url is None:
        postgres = PrivatePostgres()
        postgres.start()
        args.database_url = postgres.url("snapagg_faults")
    run = Run(args, workdir, postgres)
    ok = False
    try:
        tokens, operator = run.setup()
        now = dt.datetime.now(dt.UTC)
        plan = plan_build(
            seed=args.seed,
            events=args.events,
            clients=args.clients,
            now=now,
            batch_sizes=(min(50, args.batch_max), args.batch_max),
            round_every=args.round_every,
        )
        print(f"load: {plan.events} events, {args.clients} clients, logs in {workdir}", flush=True)
        schedule = run.load_with_faults(plan, tokens, operator)
        settle = run.settle(operator)
        check = run.check(plan)
        report = report_build(run, plan, schedule, settle, check)
        report_print(report)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str))
        ok = report_ok(report)
    finally:
        run.stack.stop()
        run.redis.kill()
        if postgres is not None:
            if args.keep:
                postgres.stop()
                print(f"PostgreSQL data kept in {postgres.workdir}", file=sys.stderr)
            else:
                postgres.remove()
        elif not args.keep:
            database_drop(args.database_url)
        if ok and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            print(f"logs kept in {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
