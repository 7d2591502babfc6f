"""Publishing the apply task. The task is addressed by name, so this module needs neither
the task module (which imports the services: that was a cycle) nor the Celery app."""

from __future__ import annotations

import logging
import time

from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)

APPLY_BATCH_TASK = "events.tasks.apply_batch"

# After a failed publish, later publishes from this process are skipped for a while: while
# Redis is down or hung each attempt costs up to its socket timeouts, and every API answer
# would wait that long. Skipped batches are durable and the sweeper enqueues them.
_publish_paused_until = 0.0


def _no_retry_after_timeout(exc: BaseException, interval: float) -> None:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, RedisTimeoutError | TimeoutError):
        raise exc


def batch_enqueue_apply(batch_id: int) -> bool:
    """Publish the apply task. A failed publish is logged, not raised: the events are
    already durable and the sweeper re-enqueues the batch once it is overdue."""
    global _publish_paused_until
    if time.monotonic() < _publish_paused_until:
        logger.warning(
            "Broker unavailable: batch %s left to the sweeper",
            batch_id,
            extra={"batch_id": batch_id},
        )
        return False
    try:
        # One retry: after a Redis restart the pooled connection fails at once and a fresh
        # one succeeds. Not after a timeout (a hung Redis): that would only double the wait.
        current_app.send_task(
            APPLY_BATCH_TASK,
            args=[batch_id],
            retry=True,
            retry_policy={
                "max_retries": 1,
                "interval_start": 0,
                "interval_step": 0.2,
                "errback": _no_retry_after_timeout,
            },
        )
    except Exception:
        _publish_paused_until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE_SECONDS
        logger.exception(
            "Could not enqueue batch %s; the sweeper will retry it",
            batch_id,
            extra={"batch_id": batch_id},
        )
        return False
    return True
