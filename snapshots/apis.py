"""HTTP adapters for days and their snapshots: the day list, a day with its history (or as of
a time), and the events behind one snapshot's change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
from aggregation.selectors import (
    day_source_total_get,
    day_total_get,
    day_total_list,
    day_total_list_for_source,
    metric_get,
    snapshot_contributions,
)
from common.api_errors import api_error
from common.api_schema import error_body, paginated
from common.conditional import conditional_get
from common.query_time import query_instant
from common.serializer_fields import DecimalStringField
from events.apis import EventOutSerializer
from events.selectors.events import event_state
from events.selectors.lateness import days_completeness
from snapshots.models import Snapshot
from snapshots.selectors.explanations import contribution_for_event, snapshot_events
from snapshots.selectors.history import (
    day_snapshots,
    snapshot_as_of,
    snapshot_get,
    snapshot_sources_of,
)
from snapshots.selectors.versions import (
    day_list_version,
    day_version,
    snapshot_events_version,
)
from snapshots.slice_apis import query_source

SOURCE_PARAMETER = OpenApiParameter(
    "source",
    str,
    description=(
        "Only events of this source (empty: events without a source); an unknown source "
        "answers zeros."
    ),
)


@dataclass
class Prepared:
    """What a read's version function found, for the view: the same `now`, the day loaded
    once, the completeness profiles queried once."""

    now: Any
    day_total: DayTotal | None = None
    metric: Any = None
    profiles: dict = field(default_factory=dict)


def _prepared(request: Request) -> Prepared:
    prepared = getattr(request, "prepared", None)
    return prepared if prepared is not None else Prepared(now=timezone.now())


def _day_of_path(metric: str, day: str) -> DayTotal | None:
    try:
        parsed = dt.date.fromisoformat(day)
    except ValueError:
        return None
    return day_total_get(metric_name=metric, day=parsed)


def _query_valid(request: Request) -> bool:
    """The query parameters the day views refuse with a 400 (no tag for those: not even
    `If-None-Match: *` may turn them into a 304)."""
    try:
        query_source(request)
    except QueryError:
        return False
    as_of = request.query_params.get("as_of")
    return as_of is None or query_instant(as_of) is not None


def _day_version(request: Request, metric: str, day: str, **kwargs: Any) -> tuple | None:
    day_total = _day_of_path(metric, day)
    if day_total is None or not _query_valid(request):
        return None  # the view answers its 400 or 404
    prepared = Prepared(now=timezone.now(), day_total=day_total)
    request.prepared = prepared
    return day_version(day_total=day_total, now=prepared.now, profiles=prepared.profiles)


def _snapshot_events_version(
    request: Request, metric: str, day: str, sequence: int, **kwargs: Any
) -> tuple | None:
    day_total = _day_of_path(metric, day)
    if day_total is None or not _query_valid(request):
        return None
    if not 1 <= sequence <= day_total.snapshot_count:  # snapshots are numbered from 1
        return None
    request.prepared = Prepared(now=timezone.now(), day_total=day_total)
    return snapshot_events_version(day_total=day_total)


def _day_list_version(request: Request, **kwargs: Any) -> tuple | None:
    try:
        day_from, day_to = query_date(request, "from"), query_date(request, "to")
        query_source(request)
    except QueryError:
        return None
    metric = None
    metric_name = request.query_params.get("metric")
    if metric_name:
        metric = metric_get(name=metric_name)
        if metric is None:
            return None
    prepared = Prepared(now=timezone.now(), metric=metric)
    request.prepared = prepared
    return day_list_version(
        metric=metric,
        day_from=day_from,
        day_to=day_to,
        now=prepared.now,
        profiles=prepared.profiles,
    )


def _day_from_path(request: Request, metric: str, day: str):
    """The day the version function loaded, or the path parsed as before."""
    prepared = getattr(request, "prepared", None)
    if prepared is not None and prepared.day_total is not None:
        return prepared.day_total, None
    return day_from_path(metric, day)


class SnapshotEventsApi(APIView):
    @extend_schema(
        operation_id="snapshot_events_list",
        parameters=[*DAY_PATH_PARAMETERS, SOURCE_PARAMETER],
        responses={
            200: paginated("PaginatedEventOutList", EventOutSerializer(many=True)),
            400: OpenApiResponse(error_body(), description="A malformed day."),
            404: OpenApiResponse(error_body(), description="No such day, snapshot or page."),
        },
        description=(
            "The events that account for this snapshot's change (of one source's change with "
            "?source=); they sum to it."
        ),
    )
    @conditional_get(_snapshot_events_version, cache_body=True)
    def get(self, request: Request, metric: str, day: str, sequence: int) -> Response:
        try:
            source = query_source(request)
        except QueryError as exc:
            return query_error(exc)
        day_total, error = _day_from_path(request, metric, day)
        if error is not None:
            return error
        snapshot = snapshot_get(day_total=day_total, sequence=sequence)
        if snapshot is None:
            return api_error(404, "not_found", f"{day_total.day} has no snapshot {sequence}.")
        contributions = snapshot_contributions(
            day_total_id=day_total.pk, sequence=sequence, source=source
        )
        paginator = StandardPagination()
        events = snapshot_events(
            day_total=day_total, contributions=contributions, sequence=sequence, source=source
        )
        page = paginator.paginate_queryset(events, request, view=self)
        for event in page:
            if not hasattr(event, "state"):  # archived and merged events carry theirs
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


class AnomalySerializer(serializers.Serializer):
    score = serializers.CharField()
    threshold = serializers.CharField()
    detail = serializers.CharField()


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
    anomaly = AnomalySerializer(allow_null=True)


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


def _restrict_to_source(day_total: DayTotal, value, event_count: int, late: int) -> None:
    """Show one source's figures in the day's shape (the instance is only serialized)."""
    day_total.value, day_total.event_count, day_total.late_event_count = value, event_count, late


def _source_snapshot(snapshot: Snapshot, row) -> Snapshot:
    """A snapshot in the day's shape with one source's figures (zeros: no events yet)."""
    snapshot.value = row.value if row else Decimal(0)
    snapshot.event_count = row.event_count if row else 0
    snapshot.change = row.change if row else Decimal(0)
    snapshot.change_events = row.change_events if row else 0
    snapshot.late_events = row.late_events if row else 0
    return snapshot


class DayListApi(APIView):
    @extend_schema(
        operation_id="days_list",
        parameters=[
            OpenApiParameter("metric", str, description="Metric name; all metrics if absent."),
            date_query_parameter("from", "First day (inclusive)."),
            date_query_parameter("to", "Last day (inclusive)."),
            SOURCE_PARAMETER,
            *PAGE_PARAMETERS,
        ],
        responses={
            200: paginated("PaginatedDayTotalList", DayTotalSerializer(many=True)),
            400: OpenApiResponse(error_body(), description="A malformed date or unknown metric."),
            404: OpenApiResponse(error_body(), description="No such page."),
        },
    )
    @conditional_get(_day_list_version, cache_body=True)
    def get(self, request: Request) -> Response:
        try:
            day_from, day_to = query_date(request, "from"), query_date(request, "to")
            source = query_source(request)
        except QueryError as exc:
            return query_error(exc)
        prepared = _prepared(request)
        metric = prepared.metric
        metric_name = request.query_params.get("metric")
        if metric_name and metric is None:
            metric = metric_get(name=metric_name)
            if metric is None:
                return api_error(
                    400, "invalid_query", f"unknown metric {metric_name!r}.", field="metric"
                )
        if source is None:
            day_totals = day_total_list(metric=metric, day_from=day_from, day_to=day_to)
        else:
            day_totals = day_total_list_for_source(
                source=source, metric=metric, day_from=day_from, day_to=day_to
            )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(day_totals, request, view=self)
        if source is not None:
            for day_total in page:
                _restrict_to_source(
                    day_total,
                    day_total.source_value,
                    day_total.source_event_count,
                    day_total.source_late_event_count,
                )
        now = prepared.now
        completeness = days_completeness(day_totals=page, now=now, profiles=prepared.profiles)
        for day_total in page:
            day_total.completeness = completeness[day_total.pk]
        data = DayTotalSerializer(page, many=True, context={"now": now}).data
        return paginator.get_paginated_response(data)


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
            SOURCE_PARAMETER,
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
    @conditional_get(_day_version, cache_body=True)
    def get(self, request: Request, metric: str, day: str) -> Response:
        try:
            source = query_source(request)
        except QueryError as exc:
            return query_error(exc)
        day_total, error = _day_from_path(request, metric, day)
        if error is not None:
            return error
        as_of_raw = request.query_params.get("as_of")
        if as_of_raw is not None:
            return self._as_of(day_total, as_of_raw, source)
        prepared = _prepared(request)
        now = prepared.now
        # Completeness is the day's, measured before the figures are narrowed to a source.
        day_total.completeness = days_completeness(
            day_totals=[day_total], now=now, profiles=prepared.profiles
        )[day_total.pk]
        snapshots = list(day_snapshots(day_total=day_total))
        if source is not None:
            self._restrict(day_total, snapshots, source)
        day_total.snapshot_list = snapshots
        return Response(DayDetailSerializer(day_total, context={"now": now}).data)

    def _restrict(self, day_total: DayTotal, snapshots: list[Snapshot], source: str) -> None:
        row = day_source_total_get(day_total_id=day_total.pk, source=source)
        _restrict_to_source(
            day_total,
            row.value if row else Decimal(0),
            row.event_count if row else 0,
            row.late_event_count if row else 0,
        )
        slices = snapshot_sources_of(day_total=day_total, source=source)
        for snapshot in snapshots:
            _source_snapshot(snapshot, slices.get(snapshot.sequence))

    def _as_of(self, day_total: DayTotal, raw: str, source: str | None) -> Response:
        as_of = query_instant(raw)
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
        if source is not None:
            slices = snapshot_sources_of(day_total=day_total, source=source)
            snapshot = _source_snapshot(snapshot, slices.get(snapshot.sequence))
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
