"""HTTP adapters: run the archive job now, and an event's detail that also answers for
archived events (read from the archive file)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.permissions import CanOperate
from archive.models import ArchiveTrigger
from archive.selectors import archived_event_find
from archive.services import ArchiveRunBusy, archive_run_execute
from common.api_errors import api_error
from common.api_schema import error_body
from common.db import text_storable
from events.apis import EventOutSerializer
from events.selectors.archived import archived_event_get
from events.selectors.events import event_get, event_state


class ArchivedFlagEventSerializer(EventOutSerializer):
    archived = serializers.BooleanField()


class EventDetailApi(APIView):
    @extend_schema(
        operation_id="events_retrieve",
        responses={200: ArchivedFlagEventSerializer, 404: error_body()},
        description="One event; `archived` tells whether it was moved to the archive.",
    )
    def get(self, request: Request, event_id: str) -> Response:
        event = event_get(event_id=event_id)
        if event is not None:
            event.state = event_state(event)
            event.archived = False
        elif text_storable(event_id) and (row := archived_event_get(event_id=event_id)):
            event = archived_event_find(day_total=row.day_total, event_id=event_id)
        if event is None:
            return api_error(404, "not_found", f"No event with event_id {event_id!r}.")
        return Response(ArchivedFlagEventSerializer(event).data)


class ArchiveRunApi(APIView):
    permission_classes = [CanOperate]

    @extend_schema(
        operation_id="archive_run",
        request=None,
        responses={
            200: inline_serializer(
                "ArchiveRunResult",
                {
                    "run_id": serializers.IntegerField(),
                    "events_archived": serializers.IntegerField(),
                    "files_written": serializers.IntegerField(),
                    "started_at": serializers.DateTimeField(),
                    "finished_at": serializers.DateTimeField(),
                },
            ),
            409: error_body(),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            run = archive_run_execute(now=timezone.now(), trigger=ArchiveTrigger.API)
        except ArchiveRunBusy:
            return api_error(
                409, "archive_run_in_progress", "Another archive run is in progress; try again."
            )
        instant = serializers.DateTimeField()
        return Response(
            {
                "run_id": run.pk,
                "events_archived": run.events,
                "files_written": run.files_written,
                "started_at": instant.to_representation(run.started_at),
                "finished_at": instant.to_representation(run.finished_at),
            }
        )
