"""Hold a named advisory lock from another database session, for tests about contention."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from django.db import connection, transaction

from snapagg_project.db import advisory_xact_lock_try


@contextlib.contextmanager
def advisory_lock_held_elsewhere(name: str) -> Iterator[None]:
    """While the block runs, another thread (so another session) holds lock `name`."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                assert advisory_xact_lock_try(name)
                holding.set()
                release.wait(30)
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
