"""Conditional GET for read APIs: an ETag computed from what the answer depends on (cheap
revision counters, not the answer itself), 304 Not Modified when the client has it, and,
for the heavier reads, the rendered body kept a few seconds in the shared cache under that
same tag, so that a storm of identical reads costs one computation.

    def _day_list_version(request, **kwargs):
        return day_list_version(...)  # a tuple of plain values, or None

    class DayListApi(APIView):
        @conditional_get(_day_list_version, cache_body=True)
        def get(self, request, ...): ...

The tag hashes the request's path and query string with the version, so two queries never
share a tag (nor a cached body). Applied to an APIView method, it runs after DRF's
authentication, permissions and throttles: a 304 or a cached body is only ever given to a
client allowed the 200, and authorisation is checked on every request.

The version must change whenever the answer can: every number it shows (revision counters
grow with each write), and what time changes without a write (a day turning final). A
version function may leave what it parsed or looked up on the request (`request.prepared`)
for the view, so that the two agree on `now` and nothing is fetched twice.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import quote_etag

logger = logging.getLogger(__name__)

VersionFunction = Callable[..., Any]

# After the cache fails, it is skipped for a while rather than paying its socket timeout on
# every read while Redis is down or hung (as the rate limit does).
_cache_paused_until = 0.0


def etag_from(*parts: Any) -> str:
    """A short, stable tag of the given values (revisions, counts, the query string)."""
    text = "\x1f".join(repr(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cache_key(tag: str) -> str:
    """Also names the database: two databases (a benchmark's, a test run's) may share a
    Redis, and their revision counters may well coincide."""
    db = settings.DATABASES["default"]
    where = f"{db.get('HOST')}:{db.get('PORT')}/{db.get('NAME')}"
    return f"read:{settings.READ_CACHE_NAMESPACE}:{where}:{tag}"


def _cache_call(operation: Callable[[], Any]) -> Any:
    """Run a cache operation; None (and a pause) when the cache is unavailable: a read is
    then computed as if nothing were cached."""
    global _cache_paused_until
    if time.monotonic() < _cache_paused_until:
        return None
    try:
        return operation()
    except Exception:
        _cache_paused_until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE_SECONDS
        logger.warning("Read cache skipped: the cache is unavailable", exc_info=True)
        return None


def _tagged(response: HttpResponse, etag: str) -> HttpResponse:
    response.headers["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ["Authorization"])
    return response


def conditional_get(version_of: VersionFunction, *, cache_body: bool = False) -> Callable:
    """Decorate an APIView's `get(self, request, **kwargs)`.

    `version_of(request, **kwargs)` returns what the answer depends on (plain values), or
    None for "no tag" (a malformed query, a day that does not exist: the view then answers
    its 400 or 404 as usual, untagged and uncached). Only a 200 is tagged; answers carry
    `Cache-Control: private, no-cache` (a client may keep them but must revalidate) and
    `Vary: Authorization` (keys may be refused what others see).

    With `cache_body`, a 200's rendered body is kept READ_CACHE_SECONDS under its tag in the
    default cache, and served from there to the next request with the same tag.
    """

    def decorator(view_method: Callable) -> Callable:
        def get(self, request, *args: Any, **kwargs: Any):
            version = version_of(request, *args, **kwargs)
            if version is None:
                return view_method(self, request, *args, **kwargs)
            tag = etag_from(request.get_full_path(), version)
            etag = quote_etag(tag)
            not_modified = get_conditional_response(request, etag=etag)
            if not_modified is not None:  # 304 (or 412 for a failed If-Match)
                return _tagged(not_modified, etag)
            seconds = settings.READ_CACHE_SECONDS if cache_body else 0
            if seconds:
                cached = _cache_call(lambda: caches["default"].get(_cache_key(tag)))
                if cached is not None:
                    content_type, body = cached
                    return _tagged(HttpResponse(body, content_type=content_type), etag)
            response = view_method(self, request, *args, **kwargs)
            if response.status_code != 200:
                return response
            if seconds:

                def store(rendered: HttpResponse) -> None:
                    value = (rendered["Content-Type"], rendered.content)
                    _cache_call(lambda: caches["default"].set(_cache_key(tag), value, seconds))

                if hasattr(response, "add_post_render_callback"):  # a DRF Response
                    response.add_post_render_callback(store)
            return _tagged(response, etag)

        get.__name__ = view_method.__name__
        get.__doc__ = view_method.__doc__
        get.__dict__.update(view_method.__dict__)  # keeps drf-spectacular's extend_schema
        return get

    return decorator
