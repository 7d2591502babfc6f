"""Celery adapter for the nightly archive run."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from archive.models import ArchiveTrigger
from archive.services import ArchiveRunBusy, archive_run_execute

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=6 * 3600, soft_time_limit=6 * 3600 - 60)
def archive_nightly() -> int:
    """Archive the eligible days. A run holding the lock covers the same days: skip."""
    try:
        run = archive_run_execute(now=timezone.now(), trigger=ArchiveTrigger.SCHEDULE)
    except ArchiveRunBusy:
        logger.info("Archive run skipped: another run holds the lock")
        return 0
    if run.error:
        logger.error("Archive run %s left days in the database: %s", run.pk, run.error)
    return run.events
