"""Hold a lock from another database session, for tests about contention."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

from django.db import connection, transaction

from aggregation.services.ledger import day_totals_lock
from common.db import advisory_xact_lock_try


@contextlib.contextmanager
def held_elsewhere(take: Callable[[], object], *, hold_seconds: float = 30) -> Iterator[None]:
    """While the block runs, another thread (so another session) has called `take` inside
    an open transaction, and keeps whatever locks it took until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                take()
                holding.set()
                release.wait(hold_seconds)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30), "the other session never took the lock"
        yield
    finally:
        release.set()
        holder.join(30)


def advisory_lock_held_elsewhere(name: str) -> contextlib.AbstractContextManager[None]:
    """Another session holds the advisory lock `name`."""

    def take() -> None:
        assert advisory_xact_lock_try(name)

    return held_elsewhere(take)


def day_totals_locked_elsewhere(
    pks: Iterable[int], *, hold_seconds: float = 30
) -> contextlib.AbstractContextManager[None]:
    """Another session holds day totals locked as an apply does (FOR NO KEY UPDATE)."""
    return held_elsewhere(lambda: day_totals_lock(list(pks)), hold_seconds=hold_seconds)


def in_threads(count: int, target: Callable[[], object]) -> list[BaseException]:
    """Run target in `count` threads (so sessions) released together; return their errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors
