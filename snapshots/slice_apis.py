"""HTTP adapters for slices, periods and rankings: GET /api/aggregates/ and GET /api/sources/,
and the query parsing they share with the source filter of the day APIs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.apis import QueryError, query_date, query_error
from aggregation.calendar import day_of
from aggregation.models import Metric
from aggregation.periods import MAX_RANGE_DAYS, PERIOD_DESCRIPTIONS, GroupBy, Period, period_range
from aggregation.selectors import metric_default, metric_get, reporting_timezone, source_list
from common.api_schema import error_body
from common.conditional import conditional_get
from common.db import text_storable
from common.numbers import decimal_str
from common.query_time import query_instant
from snapshots.selectors.aggregates import (
    Aggregate,
    AggregateGroup,
    aggregate_get,
    aggregate_version,
)

ORDERS = ("key", "-key", "value", "-value")
MAX_LIMIT = 1000


def amount_str(value: Decimal) -> str:
    """A figure of the slices API: "0" for nothing, else as every other value ("12.50")."""
    return "0" if value == 0 else decimal_str(value)


# --- Query parsing ---------------------------------------------------------------------------


def query_metric(request: Request) -> Metric:
    name = request.query_params.get("metric")
    if name in (None, ""):
        return metric_default()
    metric = metric_get(name=name)
    if metric is None:
        raise QueryError("metric", f"unknown metric {name!r}.")
    return metric


def query_source(request: Request) -> str | None:
    """None when absent; "" (no source) when given empty. Unknown sources are not errors."""
    source = request.query_params.get("source")
    if source is not None and not text_storable(source):
        raise QueryError("source", "source contains a NUL character.")
    return source


def query_as_of(request: Request) -> dt.datetime | None:
    raw = request.query_params.get("as_of")
    if raw is None:
        return None
    instant = query_instant(raw)  # as the day and day-list APIs read it: before 1970 is
    if instant is None:  # simply before any snapshot
        raise QueryError(
            "as_of", "as_of is not an ISO 8601 time with an offset (e.g. 2026-11-20T14:30:00Z)."
        )
    return instant


def _query_choice(request: Request, name: str, choices: list[str], default: str | None) -> Any:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if raw not in choices:
        raise QueryError(name, f"{name} must be one of {', '.join(choices)}.")
    return raw


def _query_limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw in (None, ""):
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise QueryError("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return int(raw)


def query_range(request: Request, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """`period` (relative to today in the reporting zone) or `from` and `to`."""
    period = _query_choice(request, "period", [p.value for p in Period], None)
    day_from, day_to = query_date(request, "from"), query_date(request, "to")
    if period is not None:
        if day_from is not None or day_to is not None:
            raise QueryError("period", "give either period, or from and to; not both.")
        return period_range(period=Period(period), today=day_of(now, reporting_timezone()))
    if day_from is None:
        raise QueryError("from", "give period, or from and to (YYYY-MM-DD).")
    if day_to is None:
        raise QueryError("to", "to is required with from (YYYY-MM-DD).")
    if day_from > day_to:
        raise QueryError("from", "from is after to.")
    if (day_to - day_from).days + 1 > MAX_RANGE_DAYS:
        raise QueryError("to", f"the range is longer than {MAX_RANGE_DAYS} days.")
    return day_from, day_to


@dataclass(frozen=True)
class AggregateQuery:
    metric: Metric
    day_from: dt.date
    day_to: dt.date
    source: str | None
    group_by: GroupBy | None
    as_of: dt.datetime | None
    order: str
    limit: int | None


def aggregate_query_parse(request: Request, now: dt.datetime) -> AggregateQuery:
    """Every parameter, checked; raises QueryError naming the first bad one."""
    metric = query_metric(request)
    day_from, day_to = query_range(request, now)
    group_by = _query_choice(request, "group_by", [g.value for g in GroupBy], None)
    return AggregateQuery(
        metric=metric,
        day_from=day_from,
        day_to=day_to,
        source=query_source(request),
        group_by=GroupBy(group_by) if group_by else None,
        as_of=query_as_of(request),
        order=_query_choice(request, "order", list(ORDERS), "key"),
        limit=_query_limit(request),
    )


# --- Serializers (for the schema; the answer is built by the functions below) -----------------


class AggregateGroupSerializer(serializers.Serializer):
    key = serializers.CharField(
        allow_null=True,
        help_text="2026-11-20, 2026-W47, 2026-11, 2026 or a source name; null for the total.",
    )
    from_ = serializers.DateField(help_text="The group's first day, clipped to the range.")
    to = serializers.DateField(help_text="The group's last day, clipped to the range.")
    value = serializers.CharField(help_text='Decimal string ("0" when there were no events).')
    event_count = serializers.IntegerField()
    average = serializers.CharField(
        allow_null=True, help_text="value / event_count, half-even to 6 places; null if no events."
    )
    status = serializers.ChoiceField(choices=["live", "provisional", "final"])

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class AggregateSerializer(serializers.Serializer):
    metric = serializers.CharField()
    from_ = serializers.DateField()
    to = serializers.DateField()
    source = serializers.CharField(allow_null=True)
    group_by = serializers.CharField(allow_null=True)
    as_of = serializers.DateTimeField(allow_null=True)
    total = AggregateGroupSerializer()
    groups = AggregateGroupSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


def _group_data(group: AggregateGroup) -> dict[str, Any]:
    average = group.average
    return {
        "key": group.key,
        "from": group.first_day.isoformat(),
        "to": group.last_day.isoformat(),
        "value": amount_str(group.value),
        "event_count": group.event_count,
        "average": decimal_str(average) if average is not None else None,
        "status": group.status.value,
    }


def aggregate_data(aggregate: Aggregate) -> dict[str, Any]:
    as_of = aggregate.as_of
    return {
        "metric": aggregate.metric.name,
        "from": aggregate.day_from.isoformat(),
        "to": aggregate.day_to.isoformat(),
        "source": aggregate.source,
        "group_by": aggregate.group_by.value if aggregate.group_by else None,
        "as_of": serializers.DateTimeField().to_representation(as_of) if as_of else None,
        "total": _group_data(aggregate.total),
        "groups": [_group_data(group) for group in aggregate.groups],
    }


# --- Views -----------------------------------------------------------------------------------

_PERIOD_HELP = "; ".join(f"`{p.value}`: {text}" for p, text in PERIOD_DESCRIPTIONS.items())

AGGREGATE_PARAMETERS = [
    OpenApiParameter("metric", str, description="Metric name; the default metric if absent."),
    OpenApiParameter(
        "period",
        str,
        enum=[p.value for p in Period],
        description=(
            "A named range relative to the current day in the reporting time zone (not with "
            f"from/to). {_PERIOD_HELP}. This month and this year end today."
        ),
        examples=[
            OpenApiExample("This month so far", value="this_month"),
            OpenApiExample("Today and the 6 days before", value="last_7_days"),
            OpenApiExample("The whole previous calendar year", value="last_year"),
        ],
    ),
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (inclusive), with to."),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (inclusive), with from."),
    OpenApiParameter("source", str, description="Only events of this source (empty: no source)."),
    OpenApiParameter(
        "group_by",
        str,
        enum=[g.value for g in GroupBy],
        description="day, ISO week (Monday first), month, year, or source.",
    ),
    OpenApiParameter(
        "as_of",
        OpenApiTypes.DATETIME,
        description="What the snapshots showed at this time (ISO 8601 with offset).",
    ),
    OpenApiParameter(
        "order",
        str,
        enum=list(ORDERS),
        description="Group order; ties in value are broken by key, ascending. Default key.",
    ),
    OpenApiParameter("limit", int, description="At most this many groups (1-1000)."),
]


def _aggregates_version(request: Request, **kwargs: Any) -> tuple | None:
    """None for a bad query (the view answers its 400); else the version, with the parsed
    query and its `now` left for the view."""
    now = timezone.now()
    try:
        query = aggregate_query_parse(request, now)
    except QueryError:
        return None
    request.prepared = (now, query)
    return aggregate_version(
        metric=query.metric,
        day_from=query.day_from,
        day_to=query.day_to,
        now=now,
        as_of=query.as_of,
    )


class AggregatesApi(APIView):
    @extend_schema(
        operation_id="aggregates_retrieve",
        parameters=AGGREGATE_PARAMETERS,
        responses={
            200: AggregateSerializer,
            400: OpenApiResponse(error_body(), description="A bad parameter, named in field."),
        },
        description=(
            "Total, count and average of one metric over a range or a period, optionally "
            "grouped (group_by=source&order=-value&limit=10 ranks sources), now or as of a time."
        ),
    )
    @conditional_get(_aggregates_version, cache_body=True)
    def get(self, request: Request) -> Response:
        prepared = getattr(request, "prepared", None)
        if prepared is None:
            now = timezone.now()
            try:
                query = aggregate_query_parse(request, now)
            except QueryError as exc:
                return query_error(exc)
        else:
            now, query = prepared
        aggregate = aggregate_get(
            metric=query.metric,
            day_from=query.day_from,
            day_to=query.day_to,
            now=now,
            source=query.source,
            group_by=query.group_by,
            as_of=query.as_of,
            order=query.order,
            limit=query.limit,
        )
        return Response(aggregate_data(aggregate))


class SourceSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(help_text="Decimal string.")
    event_count = serializers.IntegerField()
    first_day = serializers.DateField()
    last_day = serializers.DateField()


class SourceListApi(APIView):
    @extend_schema(
        operation_id="sources_list",
        parameters=[OpenApiParameter("metric", str, description="Metric; default if absent.")],
        responses={
            200: SourceSerializer(many=True),
            400: OpenApiResponse(error_body(), description="An unknown metric."),
        },
        description="Every source of the metric with its current total, largest value first.",
    )
    def get(self, request: Request) -> Response:
        try:
            metric = query_metric(request)
        except QueryError as exc:
            return query_error(exc)
        return Response(
            [
                {
                    "name": source.name,
                    "value": amount_str(source.value),
                    "event_count": source.event_count,
                    "first_day": source.first_day.isoformat(),
                    "last_day": source.last_day.isoformat(),
                }
                for source in source_list(metric=metric)
            ]
        )
