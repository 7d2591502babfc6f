"""Publishing the apply task. The task is addressed by name, so this module needs neither
the task module (which imports the services: that was a cycle) nor the Celery app."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, NamedTuple

from celery import current_app
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection

from events.models import BatchStatus

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


# --- Publishing fewer messages ------------------------------------------------------------
#
# A burst of small batches needs one apply task, not one each: that task claims every batch
# waiting when it runs (batches_apply_coalesced). So a flag in Redis says "an apply task is
# queued or running". A batch whose commit finds the flag up publishes nothing; one that
# raises it publishes a task, as before. The task takes the flag down when it ends, then
# looks for batches still waiting and, if it finds one, raises the flag and publishes a task
# for it. Why no batch is left behind (the proof is in tests/events/test_apply_publish_flag.py):
#
#   A batch B finds the flag up at time t, raised by batch A before t; A's task is published
#   after A raised it. A's task takes the flag down only when it ends, so it ends after t
#   (had it ended before, the flag raised by A would have been down at t). It then looks for
#   waiting batches after t, when B is committed (B commits before it looks at the flag), and
#   finds B unless an apply holds B's row, which then applies B, or rolls back and does the
#   same look itself. Taking the flag down more often than that (another task, the expiry)
#   only makes more batches publish.
#
# What the flag cannot cover, the sweeper does, as for any lost message: a task whose process
# was killed without its end running leaves the flag up until it expires
# (APPLY_PUBLISH_FLAG_SECONDS), and meanwhile its batches wait for the sweeper.


def _publish_flag() -> tuple[Any, str] | None:
    """The Redis client and key of this deployment's flag, or None when batches publish
    one message each: the setting is 0, or the cache is not Redis (a per-process cache
    cannot be seen by the worker that takes the flag down)."""
    if settings.APPLY_PUBLISH_FLAG_SECONDS <= 0:
        return None
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    key = backend.make_and_validate_key(
        f"apply-pending:{settings.CELERY_TASK_DEFAULT_QUEUE}:{connection.settings_dict['NAME']}"
    )
    client = getattr(backend, "_apply_flag_client", None)
    if client is None:  # one client per backend (per process and thread), as for the throttle
        client = backend._apply_flag_client = backend._cache.get_client(key, write=True)
    return client, key


def batch_enqueue_apply_once(batch_id: int) -> bool:
    """After a batch commits: publish its apply task unless one is already queued or running
    (it will take this batch too, see above). False if a publish was needed and failed."""
    global _publish_paused_until
    flag = _publish_flag()
    if flag is None or time.monotonic() < _publish_paused_until:
        return batch_enqueue_apply(batch_id)
    raised = _publish_flag_raise(flag, batch_id)
    if raised is None:
        _publish_paused_until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE_SECONDS
        return batch_enqueue_apply(batch_id)
    if not raised:
        return True
    if batch_enqueue_apply(batch_id):
        return True
    _publish_flag_lower(flag)  # no task is coming: let the next batch try
    return False


def _publish_flag_raise(flag: tuple[Any, str], batch_id: int) -> bool | None:
    """True if this call raised the flag, False if it was up already, None if Redis failed
    (then publish as if there were no flag)."""
    client, key = flag
    try:
        return bool(client.set(key, batch_id, nx=True, ex=settings.APPLY_PUBLISH_FLAG_SECONDS))
    except Exception:
        logger.warning("Could not raise the apply flag; publishing as usual", exc_info=True)
        return None


def _publish_flag_lower(flag: tuple[Any, str]) -> None:
    client, key = flag
    try:
        client.delete(key)
    except Exception:
        logger.warning("Could not take the apply flag down", exc_info=True)


_OLDEST_WAITING = f"""
SELECT id, received_at FROM events_ingestbatch
WHERE status = '{BatchStatus.RECEIVED}' AND last_error_at IS NULL AND id <> %s
ORDER BY received_at, id
LIMIT 1
"""


class HandedOn(NamedTuple):
    """The batch an ending apply hands on to its own task, and when it was received."""

    batch_id: int
    received_at: dt.datetime


def apply_task_ended(*, batch_id: int, failed: bool, keep_going: bool = False) -> HandedOn | None:
    """At the end of an apply, whatever its outcome: take the flag down, then find the
    oldest batch still waiting (one left over by a cap, or that committed while this apply
    ran) and hand it on: raise the flag and publish a task for it or, with `keep_going`, let
    the caller apply it in the same task (the flag then stays up for the caller, who must
    call this again when that apply ends). After a failure the task's own batch is not
    chosen (its retry or the sweeper has it), nor is any batch whose apply failed before,
    so a batch that cannot be applied does not loop. Returns the batch for the caller to
    apply next, if any (only with `keep_going`), with when it was received."""
    flag = _publish_flag()
    if flag is None:
        return None
    _publish_flag_lower(flag)
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_WAITING, [batch_id if failed else 0])
        row = cursor.fetchone()
    if row is None:
        return None
    oldest, received_at = row
    if not keep_going:
        batch_enqueue_apply_once(oldest)
        return None
    raised = _publish_flag_raise(flag, oldest)
    if raised:
        return HandedOn(oldest, received_at)
    if raised is None:
        batch_enqueue_apply(oldest)
    return None  # or the flag is up again: another batch raised it, and its task is coming
