"""Celery adapters for ingestion. Each task takes ids, calls one service, is safe twice."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from celery import shared_task
from celery.exceptions import TimeLimitExceeded
from celery.signals import task_failure
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from events.services.apply import batch_apply_failure_record, batches_apply_coalesced
from events.services.enqueue import APPLY_BATCH_TASK, HandedOn, apply_task_ended
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
    sweeper re-enqueues the batch later. A failure is noted on the batch being applied: the
    others it claimed are back to waiting.

    Whatever the outcome, each apply's end hands on the oldest batch still waiting, if any
    (events/services/enqueue.py: batches that found this task queued or running published
    nothing). For up to APPLY_TASK_KEEP_GOING_SECONDS the task applies it itself, a
    transaction each time, instead of publishing a task: a steady stream of small batches
    then costs no message at all. It first lets that batch be APPLY_GATHER_SECONDS old, so
    that what commits meanwhile is applied with it (_gathered). If one of those fails, the
    error is noted on it and logged, what still waits is handed on, and the task ends
    without raising: its own batch was applied, and retrying the task would not retry that
    one (the sweeper does)."""
    deadline = time.monotonic() + settings.APPLY_TASK_KEEP_GOING_SECONDS
    totals = {"batch_id": batch_id, "applied": False, "events": 0, "batches": 0}
    current: int | None = batch_id
    while current is not None:
        failed = True
        try:
            result = batches_apply_coalesced(
                batch_id=current,
                now=timezone.now(),
                max_batches=settings.APPLY_COALESCE_MAX_BATCHES,
                max_events=settings.APPLY_COALESCE_MAX_EVENTS,
            )
            failed = False
        except Exception as exc:
            batch_apply_failure_record(batch_id=current, error=exc, now=timezone.now())
            if current == batch_id:
                raise
            logger.exception(
                "Applying batch %s (taken on by the task of batch %s) failed",
                current,
                batch_id,
                extra={"batch_id": current},
            )
        finally:
            keep_going = not failed and time.monotonic() < deadline
            following = _apply_task_end(batch_id=current, failed=failed, keep_going=keep_going)
        if failed:
            break
        totals["applied"] = totals["applied"] or result.applied
        totals["events"] += result.events
        totals["batches"] += len(result.batch_ids)
        current = _gathered(following)
    return totals


def _gathered(following: HandedOn | None) -> int | None:
    """The batch handed on, once it is APPLY_GATHER_SECONDS old: the batches that commit
    meanwhile are claimed with it, in one transaction. Under a steady stream each apply then
    takes a group, at most that much later, instead of one batch as soon as it lands: the
    fixed cost of a transaction, and the day and source totals that several batches share,
    are paid once per group (on two cores, with 100-event batches at full speed, the
    worker's CPU per batch fell 5-10x and PostgreSQL's by about a quarter). A backlog is not
    held up: a batch that waited that long already is applied at once, and so is the first
    batch of a task (a lone post is applied as soon as the worker takes it)."""
    if following is None:
        return None
    age = (timezone.now() - following.received_at).total_seconds()
    wait = min(settings.APPLY_GATHER_SECONDS - age, settings.APPLY_GATHER_SECONDS)
    if wait > 0:
        time.sleep(wait)
    return following.batch_id


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


def _apply_task_end(*, batch_id: int, failed: bool, keep_going: bool = False) -> HandedOn | None:
    """Hand on what still waits; the batch to apply next in this task, if any. Never
    raises: the apply's own outcome is what the task reports, and a batch this misses is
    still the sweeper's."""
    try:
        return apply_task_ended(batch_id=batch_id, failed=failed, keep_going=keep_going)
    except Exception:
        logger.exception(
            "Could not look for batches still waiting after batch %s",
            batch_id,
            extra={"batch_id": batch_id},
        )
        return None


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_unapplied_batches() -> int:
    requeued = batches_requeue_stale(
        now=timezone.now(), older_than=dt.timedelta(seconds=settings.SWEEP_AFTER_SECONDS)
    )
    return len(requeued)
