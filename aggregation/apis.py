"""HTTP adapters for metrics (GET /api/metrics/) and the query and path helpers the day
APIs share."""

from __future__ import annotations

import datetime as dt

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.models import DayTotal, Metric, TooLatePolicy
from aggregation.selectors import day_total_get, metric_get, metric_list, metric_list_version
from aggregation.services.metrics import EDITABLE_FIELDS, metric_update
from apikeys.permissions import CanOperate
from common.api_errors import api_error
from common.api_schema import error_body
from common.conditional import conditional_get
from common.serializer_fields import TextField


class QueryError(Exception):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field, self.detail = field, detail


def query_date(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise QueryError(name, f"{name} must be a date as YYYY-MM-DD.") from None


# A day in a query: a date, or empty for "no bound" (as a form sends an empty field).
# The schema says both, so that it says exactly what query_date takes.
OPTIONAL_DATE_SCHEMA = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}]
}


# page and page_size: an integer, or empty for the default (as DRF's pagination takes it).
OPTIONAL_INTEGER_SCHEMA = {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 0}]}
PAGE_PARAMETERS = [
    OpenApiParameter("page", OPTIONAL_INTEGER_SCHEMA, description="Page number (from 1)."),
    OpenApiParameter(
        "page_size",
        OPTIONAL_INTEGER_SCHEMA,
        description="Items per page (default 100, at most 1000; 0 or less: the default).",
    ),
]


def date_query_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OPTIONAL_DATE_SCHEMA, description=description)


def query_error(exc: QueryError) -> Response:
    return api_error(400, "invalid_query", exc.detail, field=exc.field)


class StandardPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        """As the schema says: page_size is an integer (0 or less, or absent: the default;
        above 1000: 1000). DRF would quietly use the default for "abc"; this is a 400."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": "page_size must be an integer."}) from None
        if size <= 0:
            return self.page_size
        return min(size, self.max_page_size)


class MetricSerializer(serializers.ModelSerializer):
    allowed_lateness_seconds = serializers.IntegerField()

    class Meta:
        model = Metric
        fields = [
            "name",
            "description",
            "allowed_lateness_seconds",
            "too_late_policy",
            "unit",
            "raw_retention_days",
        ]


def _metric_list_version(request: Request, **kwargs) -> list[tuple]:
    return metric_list_version()


class MetricListApi(APIView):
    @extend_schema(operation_id="metrics_list", responses={200: MetricSerializer(many=True)})
    @conditional_get(_metric_list_version)
    def get(self, request: Request) -> Response:
        return Response(MetricSerializer(metric_list(), many=True).data)


# The longest allowed lateness an operator may set through the API (a year): longer would
# keep days provisional, and their raw events in the database, for no reporting purpose.
MAX_LATENESS_SECONDS = 366 * 86400


# DRF's CharField refuses NUL characters (PostgreSQL text holds none); the pattern says so
# in the schema too.
_NO_NUL = RegexValidator(r"^[^\x00]*$", "Null characters are not allowed.")


class MetricPatchSerializer(serializers.Serializer):
    description = TextField(allow_blank=True, max_length=10_000, validators=[_NO_NUL])
    unit = TextField(allow_blank=True, max_length=32, validators=[_NO_NUL])
    allowed_lateness_seconds = serializers.IntegerField(min_value=0, max_value=MAX_LATENESS_SECONDS)
    too_late_policy = serializers.ChoiceField(choices=TooLatePolicy.choices)
    raw_retention_days = serializers.IntegerField(min_value=1, max_value=100_000, allow_null=True)


class MetricDetailApi(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        operation_id="metrics_partial_update",
        request=MetricPatchSerializer,
        responses={200: MetricSerializer, 400: error_body(), 404: error_body()},
        description="Change a metric's settings (an operator's key).",
    )
    def patch(self, request: Request, name: str) -> Response:
        metric = metric_get(name=name)
        if metric is None:
            return api_error(404, "not_found", f"No metric named {name!r}.")
        if not isinstance(request.data, dict):
            return api_error(400, "invalid_body", "The body must be a JSON object.")
        unknown = sorted(set(request.data) - set(EDITABLE_FIELDS))
        if unknown:
            return api_error(
                400,
                "invalid_field",
                f"{unknown[0]} cannot be changed; editable: {', '.join(EDITABLE_FIELDS)}.",
                field=unknown[0],
            )
        serializer = MetricPatchSerializer(data=request.data, partial=True)
        if not serializer.is_valid():
            field, messages = next(iter(serializer.errors.items()))
            return api_error(400, "invalid_field", f"{field}: {messages[0]}", field=field)
        metric = metric_update(metric=metric, changes=serializer.validated_data)
        return Response(MetricSerializer(metric).data)


DAY_PATH_PARAMETERS = [
    OpenApiParameter("metric", str, OpenApiParameter.PATH, description="Metric name."),
    OpenApiParameter("day", OpenApiTypes.DATE, OpenApiParameter.PATH, description="YYYY-MM-DD"),
]


def day_from_path(metric: str, day: str) -> tuple[DayTotal | None, Response | None]:
    try:
        parsed = dt.date.fromisoformat(day)
    except ValueError:
        return None, api_error(
            400, "invalid_path", "day must be a date as YYYY-MM-DD.", field="day"
        )
    day_total = day_total_get(metric_name=metric, day=parsed)
    if day_total is None:
        return None, api_error(404, "not_found", f"No {metric!r} total for {parsed.isoformat()}.")
    return day_total, None
