"""Pages for operators: post one event, upload a CSV, follow a batch, and the operations
page (workers, backlog, snapshot runs, schedules) with its two buttons."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from aggregation.selectors import metric_default
from common.access import StaffRequiredMixin
from events.forms import CsvUploadForm, EventForm, ParsedCsv, suggested_event_id
from events.models import BatchStatus, IngestChannel
from events.selectors.events import (
    batch_days,
    batch_days_published,
    batch_get,
    batch_stored_and_conflicting_ids,
)
from events.services.ingest import IngestResult, events_ingest

ERRORS_SHOWN = 1000


def _day_links(days: list[tuple[str, dt.date]]) -> list[dict[str, Any]]:
    return [
        {"metric": metric, "day": day, "url": reverse("day-detail", args=[metric, day.isoformat()])}
        for metric, day in days
    ]


RESULTS_KEPT = 5  # recent results a session keeps, so a refresh or Back still shows them


def _result_context(
    result: IngestResult, errors: list[dict[str, Any]], what: str, repeats: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the result page shows, as plain JSON-able data for the session."""
    return {
        "result": {
            "batch_id": result.batch_id,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "conflicts": result.conflicts,
            "rejected": result.rejected,
        },
        "what": what,
        "errors": errors[:ERRORS_SHOWN],
        "errors_hidden": max(len(errors) - ERRORS_SHOWN, 0),
        "repeats": repeats[:ERRORS_SHOWN],
        "days": [(metric, day.isoformat()) for metric, day in result.days],
    }


def _redirect_to_result(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """Post/redirect/get: the result lives in the session under a fresh key, so a refresh
    of the result page shows it again instead of sending the events again."""
    key = secrets.token_urlsafe(8)
    results = {**request.session.get("ingest_results", {}), key: context}
    request.session["ingest_results"] = dict(list(results.items())[-RESULTS_KEPT:])
    return redirect("event-result", key=key)


class IngestResultView(StaffRequiredMixin, View):
    template_name = "events/result.html"

    def get(self, request: HttpRequest, key: str) -> HttpResponse:
        context = request.session.get("ingest_results", {}).get(key)
        if context is None:
            raise Http404("This result is no longer kept; the events were stored as reported.")
        days = [(metric, dt.date.fromisoformat(day)) for metric, day in context["days"]]
        batch_id = context["result"]["batch_id"]
        return render(
            request,
            self.template_name,
            {
                **context,
                "days": _day_links(days),
                "batch_url": reverse("batch-detail", args=[batch_id]) if batch_id else None,
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
        repeats = _repeats(result, [form.cleaned_data["event_id"]], [None], rejected_indexes=set())
        return _redirect_to_result(request, _result_context(result, [], "event", repeats))


def _upload_errors(parsed: ParsedCsv, result: IngestResult) -> list[dict[str, Any]]:
    """Ingest names events by their index in the list it was given; readers need lines."""
    errors = list(parsed.errors)
    for error in result.errors:
        errors.append({**error, "line": parsed.lines[error["index"]]})
    return sorted(errors, key=lambda error: error["line"])


def _repeats(
    result: IngestResult,
    event_ids: list[str],
    lines: list[int | None],
    *,
    rejected_indexes: set[int],
) -> list[dict[str, Any]]:
    """The duplicates and conflicts by line and event id. An id's first valid line is the
    one stored (or the stored event's repeat); later lines with the same id repeat it."""
    if not (result.duplicates or result.conflicts) or result.batch_id is None:
        return []
    stored, conflicting = batch_stored_and_conflicting_ids(batch_id=result.batch_id)
    seen: set[str] = set()
    repeats = []
    for index, (event_id, line) in enumerate(zip(event_ids, lines, strict=True)):
        if index in rejected_indexes:
            continue
        first = event_id not in seen
        seen.add(event_id)
        if first and event_id in stored:
            continue
        kind = "conflict" if event_id in conflicting else "duplicate"
        repeats.append({"line": line, "event_id": event_id, "kind": kind})
    return repeats


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
        repeats = _repeats(
            result,
            [event.get("event_id", "") for event in parsed.events],
            list(parsed.lines),
            rejected_indexes={error["index"] for error in result.errors},
        )
        context = _result_context(result, _upload_errors(parsed, result), "file", repeats)
        return _redirect_to_result(request, context)


class BatchView(StaffRequiredMixin, TemplateView):
    template_name = "events/batch.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        batch = batch_get(batch_id=kwargs["batch_id"])
        if batch is None:
            raise Http404(f"There is no batch {kwargs['batch_id']}.")
        published = batch_days_published(batch_id=batch.pk)
        days = _day_links(batch_days(batch_id=batch.pk))
        for link in days:
            sequence = published.get((link["metric"], link["day"]))
            link["snapshot"] = sequence
            link["snapshot_url"] = (
                reverse(
                    "snapshot-changes", args=[link["metric"], link["day"].isoformat(), sequence]
                )
                if sequence
                else None
            )
        applied = batch.status != BatchStatus.RECEIVED
        return {
            **super().get_context_data(**kwargs),
            "batch": batch,
            "days": days,
            # Reload while something is still to happen: the apply, then the snapshots.
            "settled": applied and all(link["snapshot"] for link in days),
            "paused": "paused" in self.request.GET,
        }
