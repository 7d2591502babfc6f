"""OpenAPI schema helpers: the error answers any operation can give, and paginated lists.

Schemathesis (tests/api/test_schema_fuzz.py) checks every answer against the schema, so the
schema must list them all.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

API_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}

# Answers only some operations give, by operation id.
_BY_OPERATION: dict[str, dict[str, str]] = {
    "events_ingest": {
        "403": "The token belongs to a read-only viewer.",
        "429": "Over the token's ingest rate limit; retry after Retry-After seconds.",
    },
    "snapshots_run": {"403": "Running the snapshot job needs an operator's (staff) token."},
}


def add_error_responses(
    result: dict[str, Any], generator: object, request: object, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: 401 on every operation that needs a token, 503
    on all (the database did not answer), plus the per-operation ones above."""
    result.setdefault("components", {}).setdefault("schemas", {})["ApiError"] = API_ERROR
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            extra = dict(_BY_OPERATION.get(operation.get("operationId", ""), {}))
            if any(requirement for requirement in operation.get("security", [])):
                extra["401"] = "Missing or invalid token, or the token's user is disabled."
            extra["503"] = "The database did not answer; retry after Retry-After seconds."
            responses = operation.setdefault("responses", {})
            for status, description in extra.items():
                answer = {"description": description, "content": body}
                if status in {"429", "503"}:
                    answer["headers"] = RETRY_AFTER
                responses.setdefault(status, answer)
    _closed_request_bodies(result)
    return result


# Request bodies whose API refuses a field it does not know (naming it in the 400).
CLOSED_REQUEST_SCHEMAS = ("PatchedMetricPatchRequest",)


def _closed_request_bodies(result: dict[str, Any]) -> None:
    schemas = result.get("components", {}).get("schemas", {})
    for name in CLOSED_REQUEST_SCHEMAS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False


def paginated(name: str, item: serializers.Serializer) -> serializers.Serializer:
    """The page envelope of StandardPagination around `item` results."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item,
        },
    )


ERROR_BODY = inline_serializer(
    "Error", {"error": serializers.CharField(), "detail": serializers.CharField()}
)


def error_body() -> serializers.Serializer:
    """{"error": code, "detail": sentence, ...}: one serializer, so one "Error" component."""
    return ERROR_BODY
