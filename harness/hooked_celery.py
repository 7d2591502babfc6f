"""The production Celery app with test-only hooks around the apply, for the tests and the
fault run: `celery -A harness.hooked_celery worker ...`.

Nothing here is imported by the project itself, so production code carries no hooks. The
hooks are switched on by environment variables, read once when the worker starts (before
it forks its pool, so every child has them):

- SNAPAGG_HOOK_APPLY_DELAY_SECONDS: sleep this long inside each apply transaction, after
  the day totals are locked (a slow apply, to have tasks in flight at a given moment).
- SNAPAGG_HOOK_APPLY_HANG_ONCE_FILE: if this file exists, the first apply to delete it hangs
  forever inside its transaction, ignoring the soft time limit (as a C call or a stuck
  socket would), so that only the hard time limit can stop it.
- SNAPAGG_HOOK_APPLY_MARKER_REDIS: a Redis URL; while a process is inside an apply
  transaction (day totals locked, not yet committed) the key `snapagg:applying:<pid>`
  holds the id of the batch its task was asked for (set once they are locked, cleared
  after the last write, before the commit). A process killed there leaves the key behind:
  proof that a kill landed inside an apply.
"""

from __future__ import annotations

import contextlib
import os
import time

from celery.signals import worker_init

from harness.hooked_celery_markers import marker_key
from snapagg_project.celery import app

__all__ = ["app", "marker_key"]

DELAY = float(os.environ.get("SNAPAGG_HOOK_APPLY_DELAY_SECONDS") or 0)
HANG_ONCE_FILE = os.environ.get("SNAPAGG_HOOK_APPLY_HANG_ONCE_FILE") or ""
MARKER_REDIS = os.environ.get("SNAPAGG_HOOK_APPLY_MARKER_REDIS") or ""


def _redis():
    import redis

    return redis.Redis.from_url(MARKER_REDIS, socket_timeout=1, socket_connect_timeout=1)


def _marker_set(batch_id: int) -> None:
    if MARKER_REDIS:
        with contextlib.suppress(Exception):  # the broker may be down: a fault, not a bug
            _redis().set(marker_key(os.getpid()), str(batch_id))


def _marker_clear() -> None:
    if MARKER_REDIS:
        with contextlib.suppress(Exception):
            _redis().delete(marker_key(os.getpid()))


def _hang_forever() -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    while True:
        try:
            time.sleep(1)
        except SoftTimeLimitExceeded:
            continue


def _claim_hang() -> bool:
    if not HANG_ONCE_FILE:
        return False
    try:
        os.unlink(HANG_ONCE_FILE)
    except FileNotFoundError:
        return False
    return True


@worker_init.connect
def install_hooks(**kwargs: object) -> None:
    """Once Django is set up, in the worker's main process (its pool inherits them)."""
    import django

    django.setup()
    import events.services.apply as apply_module
    import events.tasks as tasks_module

    original_days_locked = apply_module._batch_days_locked
    original_ledger_append = apply_module.ledger_append_grouped
    original_apply = tasks_module.batches_apply_coalesced

    def batch_days_locked(batch_ids: list[int]):
        locked = original_days_locked(batch_ids)  # the day totals are locked from here to commit
        return _inside_apply(batch_ids[0], locked)  # the batch the task was asked for

    def ledger_append(**kwargs):
        result = original_ledger_append(**kwargs)
        _marker_clear()  # the last write; still before the commit
        return result

    def batches_apply_coalesced(**kwargs):
        try:
            return original_apply(**kwargs)
        finally:
            _marker_clear()

    apply_module._batch_days_locked = batch_days_locked
    apply_module.ledger_append_grouped = ledger_append
    tasks_module.batches_apply_coalesced = batches_apply_coalesced


def _inside_apply(batch_id: int, locked):
    _marker_set(batch_id)
    if DELAY:
        time.sleep(DELAY)
    if _claim_hang():
        _hang_forever()
    return locked
