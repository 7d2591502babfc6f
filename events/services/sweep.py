"""The sweeper: re-enqueue batches whose apply message was lost (promise 1)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import F, Q

from common.db import advisory_xact_lock_try
from events.models import BatchStatus, IngestBatch
from events.services.enqueue import batch_enqueue_apply

logger = logging.getLogger(__name__)

SWEEP_LOCK = "snapagg.sweep_unapplied_batches"
SWEEP_LIMIT = 1000


def batches_requeue_stale(
    *,
    now: dt.datetime,
    older_than: dt.timedelta,
    enqueue: Callable[[int], bool] = batch_enqueue_apply,
) -> list[int]:
    """Re-enqueue batches still unapplied `older_than` after receipt and after their last
    enqueue (a lost message, a worker killed before acking, a broker outage)."""
    cutoff = now - older_than
    with transaction.atomic():
        if not advisory_xact_lock_try(SWEEP_LOCK):
            return []
        stale = list(
            IngestBatch.objects.filter(status=BatchStatus.RECEIVED, received_at__lt=cutoff)
            .filter(Q(last_enqueued_at__isnull=True) | Q(last_enqueued_at__lt=cutoff))
            .order_by("received_at")
            .values_list("pk", flat=True)[:SWEEP_LIMIT]
        )
        if not stale:
            return []
        IngestBatch.objects.filter(pk__in=stale).update(
            enqueue_count=F("enqueue_count") + 1, last_enqueued_at=now
        )
        transaction.on_commit(lambda: [enqueue(batch_id) for batch_id in stale])
    logger.warning("Re-enqueued %d batches left unapplied", len(stale))
    return stale
