"""Celery adapters for the scheduled snapshot run and the nightly reconcile."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from aggregation.models import ReconcileTrigger
from snapshots.models import RunTrigger
from snapshots.services.reconcile import reconcile_execute
from snapshots.services.run import SnapshotRunBusy, snapshot_run_execute

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


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3500)
def reconcile_nightly() -> int:
    """Recompute every day total; the outcome is stored (admin: Reconcile runs). Read-only
    apart from that record, so running it twice is harmless."""
    run = reconcile_execute(now=timezone.now(), trigger=ReconcileTrigger.SCHEDULE)
    if run.drift_count:
        logger.error(
            "Reconcile found %d drifting figures over %d days; see reconcile run %s",
            run.drift_count,
            run.days_checked,
            run.pk,
        )
    return run.drift_count
