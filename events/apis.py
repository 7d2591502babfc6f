"""HTTP adapters for ingestion: POST /api/events/, GET /api/events/{id}/ and a metric's lateness."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.apis import QueryError, date_query_parameter, query_date, query_error
from aggregation.calendar import day_of
from aggregation.selectors import metric_get, reporting_timezone
from apikeys.permissions import CanIngest
from common.api_errors import api_error
from common.api_schema import error_body
from common.serializer_fields import DecimalStringField
from common.throttling import IngestRateThrottle
from events.models import IngestChannel
from events.selectors.events import event_get, event_state
from events.selectors.lateness import LatenessFigures, LatenessStats, lateness_stats
from events.services.ingest import events_ingest


class BodyError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_json_body(request: Request) -> Any:
    """Decode a JSON body with decimals kept exact, enforcing the size limit ourselves
    (DRF would read past DATA_UPLOAD_MAX_MEMORY_SIZE before complaining)."""
    if request.content_type.split(";")[0].strip().lower() != "application/json":
        raise BodyError(415, "unsupported_media_type", "Send the body as application/json.")
    limit = settings.INGEST_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyError(413, "body_too_large", f"The body is larger than {limit} bytes.")
    body = _read_body(request, limit)
    if not body.strip():
        raise BodyError(400, "empty_body", 'The body is empty; send an event or {"events": [...]}.')
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise BodyError(400, "invalid_json", f"The body is not valid JSON: {exc}.") from None


def _read_body(request: Request, limit: int) -> bytes:
    too_large = BodyError(413, "body_too_large", f"The body is larger than {limit} bytes.")
    meta = request.META
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not chunked or meta.get("CONTENT_LENGTH"):
        try:
            return request.body
        except RequestDataTooBig:
            raise too_large from None
    # Chunked, so no Content-Length: Django would read an empty body and we would answer
    # "empty". Read the stream ourselves, never more than the limit, where the server
    # (gunicorn) marks where it ends; elsewhere ask for a length.
    if not meta.get("wsgi.input_terminated"):
        raise BodyError(411, "length_required", "Send the body with a Content-Length header.")
    body = meta["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise too_large
    return body


def events_from_payload(payload: Any) -> list[Any]:
    if not isinstance(payload, dict):
        raise BodyError(
            400,
            "invalid_shape",
            'Send one event object, or {"events": [...]} with 1 to '
            f"{settings.INGEST_MAX_EVENTS} events.",
        )
    if "events" not in payload:
        return [payload]
    extra = sorted(set(payload) - {"events"})
    if extra:
        raise BodyError(400, "invalid_shape", f'Unexpected key {extra[0]!r} beside "events".')
    events = payload["events"]
    if not isinstance(events, list):
        raise BodyError(400, "invalid_shape", '"events" must be a list of event objects.')
    if not events:
        raise BodyError(400, "empty_batch", '"events" is empty; send 1 to 10,000 events.')
    if len(events) > settings.INGEST_MAX_EVENTS:
        raise BodyError(
            413,
            "too_many_events",
            f"{len(events)} events in one request; the limit is {settings.INGEST_MAX_EVENTS}.",
        )
    return events


# The body as validation.validate_event takes it, so that the schema says exactly what is
# accepted: no other fields; a value that is a number or a decimal string (ASCII digits, a
# sign, a point, spaces around; below 10^14, at most 6 decimals); times with an offset from
# 1970 on; text without NUL, an id with something other than spaces; null for metric,
# arrival_time and source means the default metric, the time of receipt and no source.
_SINCE_1970 = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"
_event_in = {
    "type": "object",
    "additionalProperties": False,
    "required": ["event_id", "event_time", "value"],
    "properties": {
        "event_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "pattern": r"^[^\x00]*[^\x00\s][^\x00]*$",
        },
        "event_time": {"type": "string", "format": "date-time", "pattern": _SINCE_1970},
        "value": {
            "oneOf": [
                {
                    "type": "number",
                    "minimum": -1e14,
                    "exclusiveMinimum": True,
                    "maximum": 1e14,
                    "exclusiveMaximum": True,
                },
                {
                    "type": "string",
                    "pattern": r"^\s*[+-]?([0-9]{1,14}(\.[0-9]{0,6})?|\.[0-9]{1,6})\s*$",
                },
            ]
        },
        "metric": {"type": "string", "nullable": True},
        "arrival_time": {
            "type": "string",
            "format": "date-time",
            "pattern": _SINCE_1970,
            "nullable": True,
        },
        "source": {
            "type": "string",
            "maxLength": 64,
            "pattern": r"^[^\x00]*$",
            "nullable": True,
        },
    },
}
_ingest_errors = inline_serializer(
    "IngestError",
    many=True,
    fields={
        "index": serializers.IntegerField(),
        "event_id": serializers.CharField(allow_null=True),
        "field": serializers.CharField(),
        "detail": serializers.CharField(),
    },
)
_ingest_result = inline_serializer(
    "IngestResult",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "conflicts": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "errors": _ingest_errors,
    },
)
_error = error_body()


class _BodyRequiredSchema(AutoSchema):
    """drf-spectacular marks a raw-schema body optional; without one the API says 415."""

    def _get_request_body(self, direction: str = "request") -> dict | None:
        body = super()._get_request_body(direction)
        if body is not None:
            body["required"] = True
        return body


class EventIngestApi(APIView):
    schema = _BodyRequiredSchema()
    parser_classes: list = []  # the body is decoded by parse_json_body
    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        operation_id="events_ingest",
        request={"application/json": _event_in},
        examples=[
            OpenApiExample(
                "One event",
                request_only=True,
                value={
                    "event_id": "order-1",
                    "event_time": "2026-11-20T14:30:00Z",
                    "value": "12.50",
                    "metric": "default",
                    "source": "web",
                },
            )
        ],
        responses={
            202: _ingest_result,
            400: OpenApiResponse(_error, description="Malformed body or every event invalid."),
            411: OpenApiResponse(_error, description="Chunked body the server cannot bound."),
            413: OpenApiResponse(_error, description="Over 10,000 events or the size limit."),
            415: OpenApiResponse(_error, description="Not application/json."),
        },
        description=(
            'Post one event, or {"events": [...]} with up to 10,000. Accepted events are '
            "durable when the answer is sent."
        ),
    )
    def post(self, request: Request) -> Response:
        try:
            raw_events = events_from_payload(parse_json_body(request))
        except BodyError as exc:
            return api_error(exc.status, exc.code, exc.detail)
        result = events_ingest(
            raw_events=raw_events,
            received_at=timezone.now(),
            channel=IngestChannel.API,
            submitted_by_id=request.user.pk,
        )
        body = result.as_response()
        if result.rejected == len(raw_events):
            noun = "event is" if len(raw_events) == 1 else f"{len(raw_events)} events are"
            return Response(
                {"error": "invalid_events", "detail": f"The {noun} invalid.", **body}, status=400
            )
        return Response(body, status=202)


class EventOutSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    metric = serializers.CharField(source="metric.name")
    day = serializers.DateField()
    event_time = serializers.DateTimeField()
    arrival_time = serializers.DateTimeField()
    value = DecimalStringField()
    source = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["received", "applied", "quarantined", "rejected_too_late"],
        source="state.status",
    )
    late = serializers.BooleanField(allow_null=True, source="state.late")
    snapshot = serializers.IntegerField(allow_null=True, source="state.snapshot")


class EventDetailApi(APIView):
    @extend_schema(
        operation_id="events_retrieve",
        responses={200: EventOutSerializer, 404: _error},
    )
    def get(self, request: Request, event_id: str) -> Response:
        event = event_get(event_id=event_id)
        if event is None:
            return api_error(404, "not_found", f"No event with event_id {event_id!r}.")
        event.state = event_state(event)
        return Response(EventOutSerializer(event).data)


LATENESS_DEFAULT_DAYS = 30


class LatenessFiguresSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    late_share = serializers.FloatField(
        allow_null=True, help_text="Share of events that arrived after their day ended."
    )
    too_late_share = serializers.FloatField(
        allow_null=True,
        help_text="Share that arrived after their day's end plus the allowed lateness.",
    )
    p50_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)
    p99_seconds = serializers.FloatField(allow_null=True)
    max_seconds = serializers.FloatField(allow_null=True)
    captures_99_seconds = serializers.FloatField(
        allow_null=True,
        help_text="The allowed lateness that would have let 99% of these events in on time.",
    )

    def to_representation(self, figures: LatenessFigures) -> dict:
        # Durations go out as seconds (3 decimals), shares as fractions (4 decimals).
        data = {} if figures.source is None else {"source": figures.source}
        data["count"] = figures.count
        for name in ("late_share", "too_late_share"):
            share = getattr(figures, name)
            data[name] = None if share is None else round(share, 4)
        for name in ("p50", "p90", "p99", "max", "captures_99"):
            data[f"{name}_seconds"] = _round_seconds(getattr(figures, name))
        return data


class SourceLatenessSerializer(LatenessFiguresSerializer):
    source = serializers.CharField(help_text='The source label ("" when events had none).')


class LatenessSerializer(serializers.Serializer):
    metric = serializers.CharField()
    from_ = serializers.DateField()
    to = serializers.DateField()
    allowed_lateness_seconds = serializers.IntegerField()
    overall = LatenessFiguresSerializer()
    sources = SourceLatenessSerializer(many=True)
    recommended_allowed_lateness_seconds = serializers.FloatField(allow_null=True)
    recommendation = serializers.CharField(allow_null=True)

    def get_fields(self) -> dict:
        # "from" is a Python keyword: declared as from_, published as from.
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    def to_representation(self, stats: LatenessStats) -> dict:
        return {
            "metric": stats.metric.name,
            "from": stats.day_from.isoformat(),
            "to": stats.day_to.isoformat(),
            "allowed_lateness_seconds": stats.metric.allowed_lateness_seconds,
            "overall": LatenessFiguresSerializer(stats.overall).data,
            "sources": SourceLatenessSerializer(stats.sources, many=True).data,
            "recommended_allowed_lateness_seconds": _round_seconds(
                stats.recommended_allowed_lateness
            ),
            "recommendation": stats.recommendation,
        }


def _round_seconds(duration: dt.timedelta | None) -> float | None:
    return None if duration is None else round(duration.total_seconds(), 3)


class MetricLatenessApi(APIView):
    @extend_schema(
        operation_id="metrics_lateness",
        parameters=[
            date_query_parameter("from", "First day (default: 29 days before to)."),
            date_query_parameter("to", "Last day (default: today; before from: no days)."),
        ],
        responses={
            200: LatenessSerializer,
            400: inline_serializer(
                "LatenessQueryError",
                {
                    "error": serializers.CharField(),
                    "detail": serializers.CharField(),
                    "field": serializers.CharField(),
                },
            ),
            404: inline_serializer(
                "MetricNotFound",
                {"error": serializers.CharField(), "detail": serializers.CharField()},
            ),
        },
        description=(
            "How late this metric's events arrive (arrival_time - event_time), per source: "
            "count, share late, p50/p90/p99/max, and the allowed lateness that would have "
            "captured 99% of them, with a recommendation when the configured one is far off."
        ),
    )
    def get(self, request: Request, name: str) -> Response:
        metric = metric_get(name=name)
        if metric is None:
            return api_error(404, "not_found", f"No metric named {name!r}.")
        try:
            day_from, day_to = query_date(request, "from"), query_date(request, "to")
        except QueryError as exc:
            return query_error(exc)
        day_to = day_to or day_of(timezone.now(), reporting_timezone())
        # Any two days are a range (from after to: an empty one), as the schema says; the
        # default start stops at the first day there is (to=0001-01-02 was a 500).
        default_span = min(dt.timedelta(days=LATENESS_DEFAULT_DAYS - 1), day_to - dt.date.min)
        day_from = day_from or day_to - default_span
        stats = lateness_stats(metric=metric, day_from=day_from, day_to=day_to)
        return Response(LatenessSerializer(stats).data)
