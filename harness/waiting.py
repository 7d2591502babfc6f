"""Waiting for something to become true, while watching the processes it depends on: a
process that exits while we wait fails at once, with the end of its log, rather than after
the timeout."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class Watched(Protocol):
    name: str

    def alive(self) -> bool: ...

    def log(self) -> str: ...


class ProcessExited(RuntimeError):
    """A watched process exited while we waited."""


def poll(
    probe: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.05,
    watch: Watched | Iterable[Watched] | None = None,
    what: str = "a condition",
) -> T | None:
    """The first truthy result of `probe` within `timeout` seconds, or None."""
    watched = _watched(watch)
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        for process in watched:
            if not process.alive():
                raise ProcessExited(
                    f"{process.name} exited while waiting for {what}; the end of its log:\n"
                    f"{process.log()[-5000:]}"
                )
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    watch: Watched | Iterable[Watched] | None = None,
    *,
    interval: float = 0.05,
) -> None:
    """Return once `predicate()` is true; TimeoutError after `timeout` seconds, ProcessExited
    as soon as a watched process is gone."""
    if not poll(predicate, timeout, interval=interval, watch=watch, what=what):
        raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")


def http_ok(url: str, *, timeout: float = 5) -> bool:
    """True if GET `url` answers 200 (False if it answers anything else or nothing)."""
    parts = urlsplit(url)
    try:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        connection.request("GET", parts.path or "/")
        status = connection.getresponse().status
        connection.close()
    except (OSError, http.client.HTTPException):
        return False
    return status == 200


def _watched(watch: Watched | Iterable[Watched] | None) -> list[Watched]:
    if watch is None:
        return []
    if hasattr(watch, "alive"):
        return [watch]
    return list(watch)
