"""Redis down, hung or restarted: the API still answers 202 for durable events, nothing is
lost, and the worker survives. Real gunicorn and Celery processes, a private Redis."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from aggregation.models import DayTotal
from events.models import BatchStatus, Event, IngestBatch
from tests.conftest import event, wait_for
from tests.locks import day_totals_locked_elsewhere

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _applied(batch_count: int = 1) -> bool:
    return IngestBatch.objects.filter(status=BatchStatus.APPLIED).count() >= batch_count


def _sweep(stack) -> None:
    """What beat does every SWEEP_INTERVAL_SECONDS (SWEEP_AFTER_SECONDS is 1 here)."""
    stack.manage(
        "shell",
        "-c",
        "import time; time.sleep(1.5); "
        "from events.tasks import sweep_unapplied_batches; sweep_unapplied_batches()",
    )


def test_posting_while_redis_is_down_answers_202_and_the_sweeper_applies_later(
    stack, private_redis, web
):
    stack.start_web()
    stack.start_worker()
    private_redis.kill()

    statuses = [
        web.request("POST", "/api/events/", event(f"down-{i}", timezone.now(), "2"))[0]
        for i in range(3)
    ]

    assert statuses == [202, 202, 202]
    assert Event.objects.count() == 3  # durable before the answer
    assert not _applied()
    private_redis.start()  # empty: whatever was queued before is gone
    _sweep(stack)
    wait_for(lambda: _applied(3), 60, "the swept batches to be applied", stack.worker)
    assert DayTotal.objects.get().value == Decimal("6")


def test_posting_while_redis_hangs_still_answers_202(stack, private_redis, web):
    stack.start_web()
    private_redis.pause()
    try:
        # Each request would wait forever on a hung Redis without the socket timeouts.
        statuses = [
            web.request("POST", "/api/events/", event(f"hung-{i}", timezone.now(), "1"))[0]
            for i in range(3)
        ]
    finally:
        private_redis.resume()

    assert statuses == [202, 202, 202]
    assert Event.objects.count() == 3


def test_a_publish_just_after_a_redis_restart_needs_no_sweeper(stack, private_redis, web):
    stack.start_web()
    stack.start_worker()
    assert web.request("POST", "/api/events/", event("before", timezone.now(), "1"))[0] == 202
    wait_for(_applied, 60, "the first batch", stack.worker)

    private_redis.restart()  # the web process's pooled broker connection is now dead
    status, _ = web.request("POST", "/api/events/", event("after", timezone.now(), "1"))

    assert status == 202
    wait_for(lambda: _applied(2), 60, "the batch published after the restart", stack.worker)
    assert IngestBatch.objects.order_by("-pk").first().enqueue_count == 1


def test_the_worker_survives_losing_redis_with_a_task_in_flight(stack, private_redis, pipeline):
    """kombu raised AttributeError closing the lost channel while restoring unacknowledged
    messages, and the worker exited ("Unrecoverable error"; found by the fault run)."""
    result = pipeline.ingest([event("in-flight", timezone.now(), "5")], at=timezone.now())
    day_total = DayTotal.objects.get()
    with day_totals_locked_elsewhere([day_total.pk], hold_seconds=60):
        stack.start_worker()
        stack.manage(
            "shell",
            "-c",
            "from events.services.enqueue import batch_enqueue_apply; "
            f"batch_enqueue_apply({result.batch_id})",
        )
        wait_for(lambda: "apply_batch" in stack.worker.log(), 30, "the task to be received")
        private_redis.kill()
        wait_for(
            lambda: "Connection to broker lost" in stack.worker.log() or not stack.worker.alive(),
            30,
            "the worker to notice",
        )
    private_redis.start()
    wait_for(lambda: stack.worker.log().count("Connected to") >= 2, 60, "a reconnection")

    assert stack.worker.alive(), stack.worker.log()[-3000:]
    assert "Unrecoverable error" not in stack.worker.log()
    wait_for(_applied, 60, "the blocked apply to finish", stack.worker)
    assert DayTotal.objects.get().value == Decimal("5")
