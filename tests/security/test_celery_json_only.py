"""A real worker refuses a pickled message: pickle would run code chosen by whoever can
write to the broker."""

from __future__ import annotations

import pytest
from django.utils import timezone

from events.models import BatchStatus, IngestBatch
from events.tasks import apply_batch
from tests.conftest import event, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_the_worker_refuses_a_pickled_task_and_runs_the_json_one(celery_worker_process, pipeline):
    batch_id = pipeline.ingest([event("p", timezone.now(), "1")], at=timezone.now()).batch_id

    apply_batch.apply_async(args=[batch_id], serializer="pickle")
    wait_for(
        lambda: "Refusing to deserialize" in celery_worker_process.log(),
        30,
        "the worker to refuse the pickled message",
        celery_worker_process,
    )
    assert IngestBatch.objects.get().status == BatchStatus.RECEIVED

    apply_batch.apply_async(args=[batch_id])  # JSON, the configured serializer
    wait_for(
        lambda: IngestBatch.objects.get().status == BatchStatus.APPLIED,
        30,
        "the JSON message to be applied",
        celery_worker_process,
    )
