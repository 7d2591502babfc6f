"""Celery adapters for ingestion. Each task takes ids, calls one service, is safe twice."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from celery import shared_task
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from events.services.apply import batch_apply_failure_record, batches_apply_coalesced
from events.services.enqueue import APPLY_BATCH_TASK, apply_task_ended
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
    """Add one ingest batch to the day totals, with other waiting batches in the same
    transaction (APPLY_COALESCE_MAX_BATCHES / _EVENTS). Redelivery is harmless: the batch is
    claimed in the same transaction as the increments, so a second run finds it claimed,
    and so does the task of a batch another task took along. If retries run out, the
    sweeper re-enqueues the batch later. A failure is noted on this task's own batch: the
    others it claimed are back to waiting. Whatever the outcome, the task's end publishes a
    task for a batch still waiting, if any (events/services/enqueue.py: batches that found
    this task queued or running published none)."""
    failed = True
    try:
        result = batches_apply_coalesced(
            batch_id=batch_id,
            now=timezone.now(),
            max_batches=settings.APPLY_COALESCE_MAX_BATCHES,
            max_events=settings.APPLY_COALESCE_MAX_EVENTS,
        )
        failed = False
    except Exception as exc:
        batch_apply_failure_record(batch_id=batch_id, error=exc, now=timezone.now())
        raise
    finally:
        _apply_task_end(batch_id=batch_id, failed=failed)
    return {
        "batch_id": result.batch_id,
        "applied": result.applied,
        "events": result.events,
        "batches": len(result.batch_ids),
    }


@task_failure.connect
def record_apply_hard_time_limit(
    *, sender: object, exception: BaseException, args: tuple, **kwargs: object
) -> None:
    """An apply over its hard time limit is killed with its pool process, so the task
    body cannot note why; the worker's main process does it (Celery sends task_failure
    for hard time limits since 5.7). The batch row is still locked by the process about
    to be killed, and Celery kills it only after this returns, so the note is written by
    a thread that waits for the lock: once the process is dead its session and locks are
    gone. The batch stays unapplied and the sweeper re-enqueues it. The note goes on the
    task's own batch only: the other batches it had claimed roll back to waiting with it."""
    if getattr(sender, "name", None) != APPLY_BATCH_TASK:
        return
    if isinstance(exception, TimeLimitExceeded) and args:
        threading.Thread(
            target=_record_failure_then_close,
            kwargs={"batch_id": args[0], "error": exception, "now": timezone.now()},
            name=f"apply-timeout-{args[0]}",
            daemon=True,
        ).start()


def _record_failure_then_close(*, batch_id: int, error: BaseException, now: dt.datetime) -> None:
    try:
        batch_apply_failure_record(batch_id=batch_id, error=error, now=now)
        _apply_task_end(batch_id=batch_id, failed=True)  # the killed task's end never ran
    finally:
        connection.close()  # this thread's own connection


def _apply_task_end(*, batch_id: int, failed: bool) -> None:
    """Hand on to the next apply task. Never raises: the apply's own outcome is what the
    task reports, and a batch this misses is still the sweeper's."""
    try:
        apply_task_ended(batch_id=batch_id, failed=failed)
    except Exception:
        logger.exception(
            "Could not look for batches still waiting after batch %s",
            batch_id,
            extra={"batch_id": batch_id},
        )


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_unapplied_batches() -> int:
    requeued = batches_requeue_stale(
        now=timezone.now(), older_than=dt.timedelta(seconds=settings.SWEEP_AFTER_SECONDS)
    )
    return len(requeued)
