"""Names shared by harness/hooked_celery.py (inside the worker) and those who read its
markers (the fault run), without importing the application."""

from __future__ import annotations

MARKER_PREFIX = "snapagg:applying:"
MARKER_DB = 2  # a private Redis: the broker is on 0, the cache on 1


def marker_key(pid: int) -> str:
    return f"{MARKER_PREFIX}{pid}"
