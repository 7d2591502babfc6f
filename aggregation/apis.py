"""HTTP adapters for metrics and days: GET /api/metrics/, /api/days/, /api/days/{m}/{d}/."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.calendar import day_of
from aggregation.models import DayTotal, Metric
from aggregation.selectors import (
    LatenessFigures,
    LatenessStats,
    day_completeness,
    day_total_get,
    day_total_list,
    days_completeness,
    lateness_stats,
    metric_get,
    metric_list,
    reporting_timezone,
)
from events.validation import EventFieldError, parse_instant
from snapagg_project.api_errors import api_error
from snapagg_project.api_schema import error_body, paginated
from snapagg_project.serializer_fields import DecimalStringField
from snapshots.selectors import day_snapshots, snapshot_as_of


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


def query_error(exc: QueryError) -> Response:
    return api_error(400, "invalid_query", exc.detail, field=exc.field)


class StandardPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class MetricSerializer(serializers.ModelSerializer):
    allowed_lateness_seconds = serializers.IntegerField()

    class Meta:
        model = Metric
        fields = ["name", "description", "allowed_lateness_seconds", "too_late_policy"]


class MetricListApi(APIView):
    @extend_schema(operation_id="metrics_list", responses={200: MetricSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(MetricSerializer(metric_list(), many=True).data)


class DayTotalSerializer(serializers.Serializer):
    metric = serializers.CharField(source="metric.name")
    day = serializers.DateField()
    value = DecimalStringField()
    event_count = serializers.IntegerField()
    late_event_count = serializers.IntegerField()
    status = serializers.SerializerMethodField()
    snapshot_count = serializers.IntegerField()
    last_snapshot_at = serializers.DateTimeField(allow_null=True)
    restated = serializers.BooleanField()
    completeness = serializers.FloatField(
        allow_null=True,
        help_text=(
            "About what share of this day's events have usually arrived by now (0-1), from "
            "the metric's last 7 final days; null for final days or without history."
        ),
    )

    def get_status(self, day_total: DayTotal) -> str:
        return day_total.status_at(self.context["now"]).value


class SnapshotSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    taken_at = serializers.DateTimeField()
    value = DecimalStringField()
    event_count = serializers.IntegerField()
    change = DecimalStringField()
    change_events = serializers.IntegerField()
    late_events = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()


class DayDetailSerializer(DayTotalSerializer):
    snapshots = SnapshotSerializer(many=True, source="snapshot_list")


DAY_PATH_PARAMETERS = [
    OpenApiParameter("metric", str, OpenApiParameter.PATH, description="Metric name."),
    OpenApiParameter("day", OpenApiTypes.DATE, OpenApiParameter.PATH, description="YYYY-MM-DD"),
]


class DayAsOfSerializer(serializers.Serializer):
    """What the day showed at `as_of` (the answer with ?as_of=)."""

    metric = serializers.CharField()
    day = serializers.DateField()
    as_of = serializers.DateTimeField()
    value = DecimalStringField()
    sequence = serializers.IntegerField()
    taken_at = serializers.DateTimeField()


class DayListApi(APIView):
    @extend_schema(
        operation_id="days_list",
        parameters=[
            OpenApiParameter("metric", str, description="Metric name; all metrics if absent."),
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive)."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive)."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={
            200: paginated("PaginatedDayTotalList", DayTotalSerializer(many=True)),
            400: OpenApiResponse(error_body(), description="A malformed date or unknown metric."),
            404: OpenApiResponse(error_body(), description="No such page."),
        },
    )
    def get(self, request: Request) -> Response:
        try:
            day_from, day_to = query_date(request, "from"), query_date(request, "to")
        except QueryError as exc:
            return query_error(exc)
        metric = None
        metric_name = request.query_params.get("metric")
        if metric_name:
            metric = metric_get(name=metric_name)
            if metric is None:
                return api_error(
                    400, "invalid_query", f"unknown metric {metric_name!r}.", field="metric"
                )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(
            day_total_list(metric=metric, day_from=day_from, day_to=day_to), request, view=self
        )
        now = timezone.now()
        completeness = days_completeness(day_totals=page, now=now)
        for day_total in page:
            day_total.completeness = completeness[day_total.pk]
        data = DayTotalSerializer(page, many=True, context={"now": now}).data
        return paginator.get_paginated_response(data)


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


class DayDetailApi(APIView):
    @extend_schema(
        operation_id="days_retrieve",
        parameters=[
            *DAY_PATH_PARAMETERS,
            OpenApiParameter(
                "as_of",
                OpenApiTypes.DATETIME,
                description="Show what the day looked like at this time (ISO 8601 with offset).",
            ),
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="DayDetailOrAsOf",
                serializers=[DayDetailSerializer, DayAsOfSerializer],
                resource_type_field_name=None,
            ),
            400: OpenApiResponse(error_body(), description="A malformed day or as_of."),
            404: OpenApiResponse(error_body(), description="No such day, or no snapshot yet."),
        },
    )
    def get(self, request: Request, metric: str, day: str) -> Response:
        day_total, error = day_from_path(metric, day)
        if error is not None:
            return error
        as_of_raw = request.query_params.get("as_of")
        if as_of_raw is not None:
            return self._as_of(day_total, as_of_raw)
        now = timezone.now()
        day_total.snapshot_list = list(day_snapshots(day_total=day_total))
        day_total.completeness = day_completeness(day_total=day_total, now=now)
        return Response(DayDetailSerializer(day_total, context={"now": now}).data)

    def _as_of(self, day_total: DayTotal, raw: str) -> Response:
        try:
            as_of = parse_instant(raw, "as_of")
        except EventFieldError as exc:
            return api_error(400, "invalid_query", exc.detail, field="as_of")
        snapshot = snapshot_as_of(day_total=day_total, as_of=as_of)
        if snapshot is None:
            return api_error(
                404, "not_found", f"{day_total.day} had no snapshot yet at {as_of.isoformat()}."
            )
        return Response(
            {
                "metric": day_total.metric.name,
                "day": day_total.day.isoformat(),
                "as_of": serializers.DateTimeField().to_representation(as_of),
                "value": DecimalStringField().to_representation(snapshot.value),
                "sequence": snapshot.sequence,
                "taken_at": serializers.DateTimeField().to_representation(snapshot.taken_at),
            }
        )


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
            OpenApiParameter(
                "from", OpenApiTypes.DATE, description="First day (default: 29 days before to)."
            ),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (default: today)."),
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
        day_from = day_from or day_to - dt.timedelta(days=LATENESS_DEFAULT_DAYS - 1)
        if day_from > day_to:
            return api_error(400, "invalid_query", "from must not be after to.", field="from")
        stats = lateness_stats(metric=metric, day_from=day_from, day_to=day_to)
        return Response(LatenessSerializer(stats).data)
