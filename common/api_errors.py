"""Every API error is JSON: {"error": "<code>", "detail": "<plain sentence>", ...}."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def api_error(status: int, code: str, detail: str, **extra: Any) -> Response:
    return Response({"error": code, "detail": detail, **extra}, status=status)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, messages = next(iter(detail.items()))
        return f"{field}: {_first_message(messages)}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _database_unavailable(exc: Exception) -> Response:
    # The connection failed mid-request (database restarted, session terminated, network):
    # the request's transaction is rolled back, so retrying is the right answer, and safe
    # (a repeated event is a harmless duplicate). Not a 500: nothing is wrong in the code.
    logger.warning("Database unavailable during an API request: %s", exc)
    response = api_error(
        503,
        "database_unavailable",
        "The database did not answer; try again. Repeating events already stored is harmless.",
    )
    response["Retry-After"] = "1"
    return response


def _driver_errors() -> tuple[type[Exception], ...]:
    # Statements run on the raw psycopg cursor (the bulk event insert) raise the driver's
    # own classes, not Django's wrappers.
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.OperationalError, psycopg.InterfaceError)


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, *_driver_errors())


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return _database_unavailable(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", None)
    code = getattr(exc, "default_code", "error")
    body: dict[str, Any] = {"error": code, "detail": _first_message(detail)}
    if isinstance(detail, dict | list):
        body["fields"] = detail
    response.data = body
    return response


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None, **kwargs: Any):
    if _wants_json(request):
        return JsonResponse(
            {"error": "not_found", "detail": "There is nothing at this path."}, status=404
        )
    return defaults.page_not_found(request, exception, **kwargs)


def server_error(request: HttpRequest, **kwargs: Any):
    if _wants_json(request):
        return JsonResponse(
            {"error": "server_error", "detail": "Something went wrong on our side; it is logged."},
            status=500,
        )
    return defaults.server_error(request, **kwargs)
