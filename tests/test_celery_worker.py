"""End to end through a real `celery worker` process and Redis: no eager mode."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from aggregation.models import DayTotal
from events.models import BatchStatus, IngestBatch
from events.services.sweep import batches_requeue_stale
from tests.conftest import event, wait_for
from tests.factories import UserFactory, api_key_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _client() -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {api_key_for(UserFactory(username='client'))}")


def test_a_posted_batch_moves_the_total_through_a_real_worker(celery_worker_process):
    now = timezone.now()
    events = [event(f"w{i}", now, "0.5") for i in range(200)]

    response = _client().post("/api/events/", {"events": events}, format="json")

    assert response.status_code == 202
    wait_for(
        lambda: DayTotal.objects.filter(event_count=200).exists(),
        30,
        "the worker to apply the batch",
        celery_worker_process,
    )
    assert DayTotal.objects.get().value == Decimal("100")
    assert IngestBatch.objects.get().status == BatchStatus.APPLIED


def test_a_lost_message_is_recovered_by_the_sweeper(celery_worker_process, monkeypatch):
    now = timezone.now()
    # The publish after commit "fails": the events are durable but no task is queued.
    monkeypatch.setattr("events.services.ingest.batch_enqueue_apply_once", lambda batch_id: False)
    response = _client().post("/api/events/", event("lost", now, "7"), format="json")
    monkeypatch.undo()
    assert response.status_code == 202
    assert IngestBatch.objects.get().status == BatchStatus.RECEIVED

    requeued = batches_requeue_stale(
        now=timezone.now() + dt.timedelta(minutes=5), older_than=dt.timedelta(minutes=1)
    )

    assert len(requeued) == 1
    wait_for(
        lambda: IngestBatch.objects.filter(status=BatchStatus.APPLIED).exists(),
        30,
        "the re-enqueued batch to be applied",
        celery_worker_process,
    )
    assert DayTotal.objects.get().value == Decimal("7")


def test_redelivered_tasks_do_not_count_twice(celery_worker_process):
    from events.tasks import apply_batch

    now = timezone.now()
    response = _client().post("/api/events/", event("once", now, "3"), format="json")
    assert response.status_code == 202
    batch_id = IngestBatch.objects.get().pk
    for _ in range(5):  # as if the broker redelivered the message five times
        apply_batch.delay(batch_id)

    wait_for(
        lambda: IngestBatch.objects.filter(status=BatchStatus.APPLIED).exists(),
        30,
        "the batch to be applied",
        celery_worker_process,
    )
    wait_for(
        lambda: celery_worker_process.log().count("succeeded in") >= 6,
        30,
        "all six deliveries to run",
        celery_worker_process,
    )
    day_total = DayTotal.objects.get()
    assert (day_total.value, day_total.revision) == (Decimal("3"), 1)


def test_one_task_applies_a_burst_of_waiting_batches_and_theirs_do_nothing(
    celery_worker_process, pipeline
):
    from events.tasks import apply_batch

    now = timezone.now()
    ids = [pipeline.ingest([event(f"burst{n}", now, "2")], now).batch_id for n in range(12)]

    apply_batch.delay(ids[5])  # the others' messages come later (or were lost)
    wait_for(
        lambda: not IngestBatch.objects.filter(status=BatchStatus.RECEIVED).exists(),
        30,
        "one task to apply every waiting batch",
        celery_worker_process,
    )
    day_total = DayTotal.objects.get()
    assert (day_total.value, day_total.event_count, day_total.revision) == (Decimal("24"), 12, 1)

    for batch_id in ids:
        apply_batch.delay(batch_id)
    wait_for(
        lambda: celery_worker_process.log().count("succeeded in") >= 13,
        30,
        "every batch's own task to run",
        celery_worker_process,
    )
    day_total.refresh_from_db()
    assert (day_total.value, day_total.revision) == (Decimal("24"), 1)


def test_concurrent_posts_are_all_applied_without_the_sweeper(celery_worker_process):
    """Batches that commit while an apply task is queued or running publish no task of their
    own (events/services/enqueue.py); the running task's end must hand them on. Four clients
    post ten batches each; no sweeper runs here, so every batch is applied by a task a post
    or another task's end published."""
    import itertools

    from tests.locks import in_threads

    now = timezone.now()
    numbers = itertools.count()
    user = UserFactory(username="client")
    key = api_key_for(user)

    def post_ten() -> None:
        client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
        for _ in range(10):
            response = client.post(
                "/api/events/", event(f"c{next(numbers)}", now, "1"), format="json"
            )
            assert response.status_code == 202

    assert in_threads(4, post_ten) == []
    wait_for(
        lambda: IngestBatch.objects.filter(status=BatchStatus.APPLIED).count() == 40,
        30,
        "every batch to be applied",
        celery_worker_process,
    )
    day_total = DayTotal.objects.get()
    assert (day_total.value, day_total.event_count) == (Decimal("40"), 40)
