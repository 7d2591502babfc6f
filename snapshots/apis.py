"""HTTP adapters for days and their snapshots: the day list, a day with its history (or as of
a time), and the events behind one snapshot's change."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.apis import (
    DAY_PATH_PARAMETERS,
    PAGE_PARAMETERS,
    QueryError,
    StandardPagination,
    date_query_parameter,
    day_from_path,
    query_date,
    query_error,
)
from aggregation.models import DayTotal
from aggregation.selectors import day_total_list, metric_get, snapshot_contributions
from common.api_errors import api_error
from common.api_schema import error_body, paginated
from common.serializer_fields import DecimalStringField
from events.apis import EventOutSerializer
from events.selectors.events import event_state
from events.selectors.lateness import day_completeness, days_completeness
from snapshots.selectors.explanations import contribution_events, contribution_for_event
from snapshots.selectors.history import day_snapshots, snapshot_as_of, snapshot_get


class SnapshotEventsApi(APIView):
    @extend_schema(
        operation_id="snapshot_events_list",
        parameters=[*DAY_PATH_PARAMETERS],
        responses={
            200: paginated("PaginatedEventOutList", EventOutSerializer(many=True)),
            400: OpenApiResponse(error_body(), description="A malformed day."),
            404: OpenApiResponse(error_body(), description="No such day, snapshot or page."),
        },
        description="The events that account for this snapshot's change; they sum to it.",
    )
    def get(self, request: Request, metric: str, day: str, sequence: int) -> Response:
        day_total, error = day_from_path(metric, day)
        if error is not None:
            return error
        snapshot = snapshot_get(day_total=day_total, sequence=sequence)
        if snapshot is None:
            return api_error(404, "not_found", f"{day_total.day} has no snapshot {sequence}.")
        contributions = snapshot_contributions(day_total_id=day_total.pk, sequence=sequence)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(contribution_events(contributions), request, view=self)
        for event in page:
            event.state = event_state(event, contribution_for_event(event, contributions))
        return paginator.get_paginated_response(EventOutSerializer(page, many=True).data)


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
            date_query_parameter("from", "First day (inclusive)."),
            date_query_parameter("to", "Last day (inclusive)."),
            *PAGE_PARAMETERS,
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


def _as_of_instant(raw: str) -> dt.datetime | None:
    """Any date-time with an offset, as the schema says: before the first snapshot (even
    before 1970) the answer is 404; beyond the years Python has in UTC, the first or last
    instant there is."""
    try:
        instant = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if instant.utcoffset() is None:
        return None
    try:
        return instant.astimezone(dt.UTC)
    except OverflowError:
        edge = dt.datetime.min if instant.year == dt.MINYEAR else dt.datetime.max
        return edge.replace(tzinfo=dt.UTC)


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
        as_of = _as_of_instant(raw)
        if as_of is None:
            return api_error(
                400,
                "invalid_query",
                "as_of must be an ISO 8601 time with an offset (e.g. 2026-11-20T14:30:00Z).",
                field="as_of",
            )
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
