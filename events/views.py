"""Pages for operators: post one event, upload a CSV, follow a batch, and the operations
page (workers, backlog, snapshot runs, schedules) with its two buttons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from aggregation.selectors import metric_default
from common.access import StaffRequiredMixin
from events.forms import CsvUploadForm, EventForm, ParsedCsv, suggested_event_id
from events.models import IngestChannel
from events.selectors.events import batch_days, batch_get
from events.services.ingest import IngestResult, events_ingest

ERRORS_SHOWN = 1000


def _day_links(days: list[tuple[str, dt.date]]) -> list[dict[str, Any]]:
    return [
        {"metric": metric, "day": day, "url": reverse("day-detail", args=[metric, day.isoformat()])}
        for metric, day in days
    ]


def _result_page(
    request: HttpRequest, result: IngestResult, errors: list[dict[str, Any]], what: str
) -> HttpResponse:
    return render(
        request,
        "events/result.html",
        {
            "result": result,
            "what": what,
            "errors": errors[:ERRORS_SHOWN],
            "errors_hidden": max(len(errors) - ERRORS_SHOWN, 0),
            "days": _day_links(result.days),
            "batch_url": reverse("batch-detail", args=[result.batch_id])
            if result.batch_id
            else None,
        },
    )


class EventPostView(StaffRequiredMixin, View):
    template_name = "events/post.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = EventForm(initial={"event_id": suggested_event_id(), "metric": metric_default()})
        return render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = EventForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        result = events_ingest(
            raw_events=[form.raw_event()],
            received_at=timezone.now(),
            channel=IngestChannel.FORM,
            submitted_by_id=request.user.pk,
        )
        if result.rejected:
            form.add_ingest_errors(result.errors)
            return render(request, self.template_name, {"form": form})
        return _result_page(request, result, [], "event")


def _upload_errors(parsed: ParsedCsv, result: IngestResult) -> list[dict[str, Any]]:
    """Ingest names events by their index in the list it was given; readers need lines."""
    errors = list(parsed.errors)
    for error in result.errors:
        errors.append({**error, "line": parsed.lines[error["index"]]})
    return sorted(errors, key=lambda error: error["line"])


class CsvUploadView(StaffRequiredMixin, View):
    template_name = "events/upload.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": CsvUploadForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CsvUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        parsed: ParsedCsv = form.cleaned_data["file"]
        result = events_ingest(
            raw_events=parsed.events,
            received_at=timezone.now(),
            channel=IngestChannel.CSV,
            submitted_by_id=request.user.pk,
        )
        result.rejected += len(parsed.errors)
        return _result_page(request, result, _upload_errors(parsed, result), "file")


class BatchView(StaffRequiredMixin, TemplateView):
    template_name = "events/batch.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        batch = batch_get(batch_id=kwargs["batch_id"])
        if batch is None:
            raise Http404(f"There is no batch {kwargs['batch_id']}.")
        return {
            **super().get_context_data(**kwargs),
            "batch": batch,
            "days": _day_links(batch_days(batch_id=batch.pk)),
        }
