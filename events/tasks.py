"""Celery adapters for ingestion. Each task takes ids, calls one service, is safe twice."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from events.services.apply import batch_apply, batch_apply_failure_record
from events.services.enqueue import APPLY_BATCH_TASK
from events.services.sweep import batches_requeue_stale

logger = logging.getLogger(__name__)


@shared_task(
    name=APPLY_BATCH_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=8,
    time_limit=120,
    soft_time_limit=100,
)
def apply_batch(batch_id: int) -> dict[str, int | bool]:
    """Add one ingest batch to the day totals. Redelivery is harmless: the batch is
    claimed in the same transaction as the increments, so a second run finds it claimed.
    If retries run out, the sweeper re-enqueues the batch later."""
    try:
        result = batch_apply(batch_id=batch_id, now=timezone.now())
    except Exception as exc:
        batch_apply_failure_record(batch_id=batch_id, error=exc, now=timezone.now())
        raise
    return {"batch_id": result.batch_id, "applied": result.applied, "events": result.events}


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_unapplied_batches() -> int:
    requeued = batches_requeue_stale(
        now=timezone.now(), older_than=dt.timedelta(seconds=settings.SWEEP_AFTER_SECONDS)
    )
    return len(requeued)
