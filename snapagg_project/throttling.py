"""Per-token rate limit on ingest, counted in the cache shared by every web worker."""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

# After the cache fails, the limit is skipped for a while instead of paying the cache's
# socket timeout on every request while Redis is down or hung (as for the broker publish).
_cache_paused_until = 0.0


def token_fingerprint(key: str) -> str:
    """Identifies a token in cache keys and logs without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class IngestRateThrottle(BaseThrottle):
    """`INGEST_RATE_LIMIT` requests per token per window, then 429 with Retry-After.

    A fixed window counted with the cache's atomic `incr` (Redis INCR when the cache is
    Redis): concurrent requests on different gunicorn workers cannot both slip under the
    limit, as they can with DRF's read-modify-write history list, and each request costs
    one round trip whatever the rate. The window is part of the key, so counters expire
    by themselves and never need resetting.
    """

    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: object) -> bool:
        global _cache_paused_until
        rate = settings.INGEST_RATE_LIMIT
        token = getattr(request.auth, "key", None)
        if rate is None or token is None or time.monotonic() < _cache_paused_until:
            return True
        limit, period = rate
        now = time.time()
        key = f"throttle:ingest:{token_fingerprint(token)}:{int(now // period)}"
        try:
            cache.add(key, 0, timeout=period + 1)
            used = cache.incr(key)
        except ValueError:  # the counter expired between add and incr: a new window
            return True
        except Exception:
            # The limit protects capacity; it must not refuse durable ingest when the cache
            # (Redis) is down. Fail open, and say so in the log.
            _cache_paused_until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE_SECONDS
            logger.warning("Ingest rate limit not applied: the cache is unavailable", exc_info=True)
            return True
        if used <= limit:
            return True
        self.retry_after = period - (now % period)
        return False

    def wait(self) -> float | None:
        return self.retry_after
