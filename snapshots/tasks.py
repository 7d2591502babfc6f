"""Celery adapter for the scheduled snapshot run."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from snapshots.models import RunTrigger
from snapshots.services import SnapshotRunBusy, snapshot_run_execute

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def run_snapshots() -> int:
    """Scheduled snapshot run. If another run holds the lock this one is logged as
    skipped: the other run covers the same changes, so nothing is missed."""
    try:
        run = snapshot_run_execute(now=timezone.now(), trigger=RunTrigger.SCHEDULE)
    except SnapshotRunBusy:
        logger.info("Snapshot run skipped: another run holds the lock")
        return 0
    return run.days_snapshotted
