"""Every API error is JSON: {"error": "<code>", "detail": "<plain sentence>", ...}."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def api_error(status: int, code: str, detail: str, **extra: Any) -> Response:
    return Response({"error": code, "detail": detail, **extra}, status=status)


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, messages = next(iter(detail.items()))
        return f"{field}: {_first_message(messages)}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
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
