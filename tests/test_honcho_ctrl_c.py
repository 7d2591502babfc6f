"""Ctrl-C on `make run` (honcho with the Procfile) stops every process it started and
loses no task, with the worker on the prefork pool and applies in flight."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
import redis
from django.conf import settings
from django.utils import timezone

from aggregation.models import Contribution, DayTotal
from events.models import BatchStatus, IngestBatch
from harness.processes import Stack
from harness.waiting import wait_until
from tests.conftest import PROJECT_ROOT, event, test_database_url

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BATCHES = 6
APPLY_SECONDS = 3


def _procfile_worker_line() -> str:
    text = (PROJECT_ROOT / "Procfile").read_text()
    return re.search(r"^worker:\s*(.+)$", text, re.MULTILINE).group(1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_ctrl_c_on_honcho_stops_every_process_and_loses_no_task(pipeline, tmp_path: Path):
    from events.tasks import apply_batch
    from harness.hooked_celery_markers import MARKER_PREFIX
    from snapagg_project.celery import app

    app.control.purge()
    # The Procfile's worker line as it is, with the app swapped for the same app whose
    # applies take APPLY_SECONDS (so that some are in flight when Ctrl-C comes).
    line = _procfile_worker_line()
    assert " -A snapagg_project " in line
    hostname = f"honcho-{uuid.uuid4().hex[:8]}@localhost"
    line = line.replace(" -A snapagg_project ", " -A harness.hooked_celery ") + f" -n {hostname}"
    procfile = tmp_path / "Procfile"
    procfile.write_text(f"worker: {line}\n")
    marker_db = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
        "SNAPAGG_HOOK_APPLY_DELAY_SECONDS": str(APPLY_SECONDS),
        "SNAPAGG_HOOK_APPLY_MARKER_REDIS": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "honcho.log"
    with log_path.open("wb") as log:
        # A terminal's Ctrl-C goes to its foreground process group: honcho's own group.
        honcho = subprocess.Popen(
            [str(Path(sys.executable).parent / "honcho"), "start", "-f", str(procfile),
             "-d", str(PROJECT_ROOT)],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: " ready." in log_path.read_text(), 90, "the worker to start")
        now = timezone.now()
        batch_ids = []
        for number in range(BATCHES):
            result = pipeline.ingest([event(f"b{number}-{i}", now, "1") for i in range(3)], now)
            batch_ids.append(result.batch_id)
            apply_batch.delay(result.batch_id)
        wait_until(
            lambda: marker_db.keys(f"{MARKER_PREFIX}*"),
            60,
            "an apply to be in flight",
        )
        started = [p.pid for p in psutil.Process(honcho.pid).children(recursive=True)]
        assert len(started) >= 3  # honcho's helper, the worker, its pool processes

        os.killpg(honcho.pid, signal.SIGINT)
        honcho.wait(60)
        wait_until(lambda: not any(_alive(pid) for pid in started), 30, "every process to be gone")
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(10)
        marker_db.delete(*marker_db.keys(f"{MARKER_PREFIX}*") or ["-"])
    log_text = log_path.read_text()
    assert "SIGKILL" not in log_text, log_text[-3000:]  # honcho did not have to force it

    # Every task is either done or back in the queue: a new worker finishes them all,
    # with no sweeper running (a message left unacknowledged would wait an hour).
    applied_before = IngestBatch.objects.filter(status=BatchStatus.APPLIED).count()
    stack = Stack(env={**env, "SNAPAGG_HOOK_APPLY_DELAY_SECONDS": "0"}, workdir=tmp_path)
    try:
        worker = stack.start_worker(pool="prefork", concurrency=2)
        wait_until(
            lambda: IngestBatch.objects.filter(status=BatchStatus.APPLIED).count() == BATCHES,
            60,
            f"all {BATCHES} batches to be applied ({applied_before} were before Ctrl-C)",
            worker,
        )
    finally:
        stack.stop()
    total = DayTotal.objects.get()
    assert (total.value, total.event_count) == (Decimal(BATCHES * 3), BATCHES * 3)
    assert Contribution.objects.filter(batch_id__in=batch_ids).count() == BATCHES
