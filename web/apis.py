"""HTTP adapters of the operations layer: GET /api/health/ and POST /api/snapshots/run/."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.permissions import CanOperate
from common.api_errors import api_error
from events.selectors.events import backlog_get
from snapshots.models import RunTrigger
from snapshots.selectors.history import snapshot_run_last_completed
from snapshots.services.run import SnapshotRunBusy, snapshot_run_execute
from web.selectors import broker_reachable, workers_alive


class HealthApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="health",
        responses={
            200: inline_serializer(
                "Health",
                {
                    "database": serializers.CharField(),
                    "broker": serializers.ChoiceField(choices=["ok", "down"]),
                    "workers": serializers.IntegerField(),
                    "backlog": serializers.IntegerField(),
                    "oldest_unapplied_seconds": serializers.FloatField(allow_null=True),
                    "last_snapshot_run": serializers.DateTimeField(allow_null=True),
                },
            ),
            503: inline_serializer("HealthDown", {"database": serializers.CharField()}),
        },
    )
    def get(self, request: Request) -> Response:
        now = timezone.now()
        try:
            connection.ensure_connection()
            backlog = backlog_get()
            workers = len(workers_alive(now=now))
            last_run = snapshot_run_last_completed()
        except DatabaseError:
            return Response({"database": "down"}, status=503)
        oldest = backlog.oldest_received_at
        return Response(
            {
                "database": "ok",
                "broker": "ok" if broker_reachable() else "down",
                "workers": workers,
                "backlog": backlog.events,
                "oldest_unapplied_seconds": (
                    round((now - oldest).total_seconds(), 3) if oldest else None
                ),
                "last_snapshot_run": last_run.finished_at if last_run else None,
            }
        )


class SnapshotRunApi(APIView):
    permission_classes = [CanOperate]

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
