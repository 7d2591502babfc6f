"""HTTP adapters for snapshots: the events behind a change, and running the job now."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aggregation.apis import DAY_PATH_PARAMETERS, StandardPagination, day_from_path
from events.apis import EventOutSerializer
from events.selectors import (
    contribution_events,
    contribution_for_event,
    event_state,
    snapshot_contributions,
)
from snapagg_project.api_errors import api_error
from snapagg_project.api_schema import error_body, paginated
from snapagg_project.permissions import IsOperator
from snapshots.models import RunTrigger
from snapshots.selectors import snapshot_get
from snapshots.services import SnapshotRunBusy, snapshot_run_execute


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


class SnapshotRunApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(
        operation_id="snapshots_run",
        request=None,
        responses={
            200: inline_serializer(
                "SnapshotRunResult",
                {
                    "run_id": serializers.IntegerField(),
                    "days_snapshotted": serializers.IntegerField(),
                    "started_at": serializers.DateTimeField(),
                    "finished_at": serializers.DateTimeField(),
                },
            ),
            409: inline_serializer(
                "SnapshotRunBusy",
                {"error": serializers.CharField(), "detail": serializers.CharField()},
            ),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            run = snapshot_run_execute(now=timezone.now(), trigger=RunTrigger.API)
        except SnapshotRunBusy:
            return api_error(
                409, "snapshot_run_in_progress", "Another snapshot run is in progress; try again."
            )
        return Response(
            {
                "run_id": run.pk,
                "days_snapshotted": run.days_snapshotted,
                "started_at": serializers.DateTimeField().to_representation(run.started_at),
                "finished_at": serializers.DateTimeField().to_representation(run.finished_at),
            }
        )
