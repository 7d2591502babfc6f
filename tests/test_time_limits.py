"""Time limits apply: the worker runs on the prefork pool (Procfile, Makefile, harness), a
hung apply is killed at its hard limit, its locks go with it, the failure is recorded on the
batch and the sweeper has it applied later, once."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from aggregation.models import Contribution, DayTotal
from events.models import BatchStatus, IngestBatch
from events.services.apply import batch_apply
from events.services.sweep import batches_requeue_stale
from harness.processes import ManagedProcess, Stack
from tests.conftest import PROJECT_ROOT, event, test_database_url, wait_for

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


def _worker_command(path: Path) -> str:
    """The `worker` line of a Procfile, or the `worker:` recipe of the Makefile."""
    text = path.read_text()
    if path.name == "Procfile":
        return re.search(r"^worker:\s*(.+)$", text, re.MULTILINE).group(1)
    return re.search(r"^worker:.*\n\t(.+)$", text, re.MULTILINE).group(1)


@pytest.mark.parametrize("path", ["Procfile", "Makefile"])
def test_the_worker_runs_on_a_pool_that_enforces_time_limits(path):
    command = _worker_command(PROJECT_ROOT / path)

    assert re.search(r"-P prefork\b", command), command
    assert "threads" not in command


def test_the_harness_workers_default_to_prefork():
    import inspect

    assert inspect.signature(Stack.start_worker).parameters["pool"].default == "prefork"


def worker_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
        **extra,
    }


@pytest.fixture
def hanging_worker(transactional_db, tmp_path: Path):
    """A prefork worker whose next apply hangs inside its transaction (day totals
    locked) and ignores the soft time limit, until the hard limit kills it."""
    from snapagg_project.celery import app
    from web.models import WorkerHeartbeat

    app.control.purge()
    hang_file = tmp_path / "hang-once"
    env = worker_env(SNAPAGG_HOOK_APPLY_HANG_ONCE_FILE=str(hang_file))
    hostname = f"limits-{uuid.uuid4().hex[:8]}@localhost"
    stack = Stack(env=env, workdir=tmp_path, celery_app="harness.hooked_celery")
    try:
        worker = stack.start_worker(
            hostname=hostname,
            pool="prefork",
            concurrency=1,
            ready=lambda _: WorkerHeartbeat.objects.filter(hostname=hostname).exists(),
        )
        yield worker, hang_file
    finally:
        stack.stop()


def _worker_sessions_in_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


def test_an_apply_over_its_hard_limit_is_killed_its_locks_released_and_it_is_applied_later(
    hanging_worker: tuple[ManagedProcess, Path], pipeline
):
    from events.tasks import apply_batch

    worker, hang_file = hanging_worker
    now = timezone.now()
    first = pipeline.ingest([event(f"hung-{i}", now, "2") for i in range(5)], now)
    second = pipeline.ingest([event(f"next-{i}", now, "3") for i in range(4)], now)
    children_before = {child.pid for child in worker.children()}
    hang_file.touch()

    # Short limits for this message only (the task's own are minutes).
    apply_batch.apply_async((first.batch_id,), time_limit=4, soft_time_limit=2)
    wait_for(lambda: not hang_file.exists(), 30, "the apply to start and hang", worker)
    wait_for(
        lambda: "TimeLimitExceeded" in IngestBatch.objects.get(pk=first.batch_id).last_error,
        60,
        "the hard time limit to kill the apply and the failure to be recorded",
        worker,
    )

    assert "Soft time limit (2s) exceeded" in worker.log()
    assert "Hard time limit (4s) exceeded" in worker.log()
    assert IngestBatch.objects.get(pk=first.batch_id).status == BatchStatus.RECEIVED
    assert not Contribution.objects.filter(batch_id=first.batch_id).exists()
    # The killed process is gone, and so is its database session with its locks: another
    # apply locks the same day total at once (a held lock would fail lock_timeout).
    # The failure is recorded before the pool has reaped the process and started its
    # replacement, so wait for the old one to leave rather than looking once.
    wait_for(
        lambda: not children_before & {child.pid for child in worker.children()},
        30,
        "the killed pool process to be gone",
        worker,
    )
    wait_for(lambda: _worker_sessions_in_transaction() == 0, 10, "no session in a transaction")
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")
    assert batch_apply(batch_id=second.batch_id, now=timezone.now()).applied
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = 0")

    # The sweeper re-enqueues the batch; this time the apply does not hang.
    requeued = batches_requeue_stale(
        now=timezone.now() + dt.timedelta(minutes=5), older_than=dt.timedelta(minutes=1)
    )
    assert requeued == [first.batch_id]
    wait_for(
        lambda: IngestBatch.objects.get(pk=first.batch_id).status == BatchStatus.APPLIED,
        30,
        "the re-enqueued batch to be applied",
        worker,
    )
    total = DayTotal.objects.get()
    assert (total.value, total.event_count) == (Decimal("22"), 9)  # 5 x 2 + 4 x 3, once
    assert Contribution.objects.filter(batch_id=first.batch_id).count() == 1
