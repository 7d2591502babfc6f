"""Conditional GET for read APIs: an ETag computed from what the answer depends on (cheap
revision counters, not the answer itself), and 304 Not Modified when the client has it.

    class DayListApi(APIView):
        @conditional_get(lambda request, **kwargs: etag_from(request.get_full_path(), ...))
        def get(self, request, ...): ...

Built on Django's own `condition` decorator (If-None-Match parsing, weak comparison, 304
for GET/HEAD). Applied to an APIView method, it runs after DRF's authentication,
permissions and throttles, so a 304 is only ever given to a client allowed the 200.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.decorators import method_decorator
from django.views.decorators.http import condition

EtagFunction = Callable[..., str | None]


def etag_from(*parts: Any) -> str:
    """A short, stable tag of the given values (revisions, counts, the query string)."""
    text = "\x1f".join(repr(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def conditional_get(etag_of: EtagFunction) -> Callable:
    """Decorate an APIView's `get(self, request, **kwargs)`.

    `etag_of(request, **kwargs)` returns the tag, or None for "no tag" (say, when the thing
    asked for does not exist: the view then answers as usual, without one). Answers carry
    `Cache-Control: private, no-cache` (a client may keep them but must revalidate) and
    `Vary: Authorization` (keys may see different things).
    """

    def decorator(view_method: Callable) -> Callable:
        conditional = method_decorator(condition(etag_func=etag_of))(view_method)

        def get(self, request, *args: Any, **kwargs: Any):
            response = conditional(self, request, *args, **kwargs)
            if response.has_header("ETag"):
                patch_cache_control(response, private=True, no_cache=True)
                patch_vary_headers(response, ["Authorization"])
            return response

        get.__name__ = view_method.__name__
        get.__doc__ = view_method.__doc__
        get.__dict__.update(view_method.__dict__)  # keeps drf-spectacular's extend_schema
        return get

    return decorator
