"""HTTP adapter: GET /api/alerts/?kind=K&since=T (newest first, paginated)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.apis import PAGE_PARAMETERS, StandardPagination
from alerts.models import AlertKind
from alerts.selectors import alert_list
from common.api_errors import api_error
from common.api_schema import error_body, paginated
from common.query_time import query_instant


class AlertDeliverySerializer(serializers.Serializer):
    channel = serializers.CharField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = serializers.CharField()


class AlertSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    created_at = serializers.DateTimeField()
    metric = serializers.CharField(source="metric.name", allow_null=True)
    day = serializers.DateField(allow_null=True)
    sequence = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()
    deliveries = AlertDeliverySerializer(many=True)


class AlertListApi(APIView):
    @extend_schema(
        operation_id="alerts_list",
        parameters=[
            OpenApiParameter("kind", str, enum=AlertKind.values, description="Only this kind."),
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Raised at or after (with offset)."
            ),
            *PAGE_PARAMETERS,
        ],
        responses={
            200: paginated("PaginatedAlertList", AlertSerializer(many=True)),
            400: OpenApiResponse(error_body(), description="An unknown kind or a bad since."),
            404: OpenApiResponse(error_body(), description="No such page."),
        },
    )
    def get(self, request: Request) -> Response:
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in AlertKind.values:
            return api_error(
                400,
                "invalid_query",
                f"kind must be one of {', '.join(AlertKind.values)}.",
                field="kind",
            )
        since = None
        if "since" in request.query_params:  # an empty since has no offset either: 400
            since = query_instant(request.query_params["since"])
            if since is None:
                return api_error(
                    400,
                    "invalid_query",
                    "since must be an ISO 8601 time with an offset (e.g. 2026-11-20T14:30:00Z).",
                    field="since",
                )
        paginator = StandardPagination()
        page = paginator.paginate_queryset(alert_list(kind=kind, since=since), request, view=self)
        return paginator.get_paginated_response(AlertSerializer(page, many=True).data)
