"""Pages for operators: post one event, upload a CSV, follow a batch, and the operations
page (workers, backlog, snapshot runs, schedules) with its two buttons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from aggregation.selectors import metric_default, metrics_lateness, reconcile_last
from events.forms import CsvUploadForm, EventForm, ParsedCsv, suggested_event_id
from events.models import IngestChannel
from events.selectors import backlog_get, batch_days, batch_get, workers_status
from events.services import IngestResult, batches_requeue_stale, events_ingest
from snapagg_project.access import StaffRequiredMixin
from snapagg_project.formatting import duration_text, plural
from snapshots.models import RunTrigger
from snapshots.selectors import periodic_tasks_list, snapshot_runs_recent
from snapshots.services import SnapshotRunBusy, snapshot_run_execute
from snapshots.tables import PeriodicTaskTable, SnapshotRunTable

ERRORS_SHOWN = 1000
PING_TIMEOUT_SECONDS = 1.0
LATENESS_DAYS = 30


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


class OperationsView(StaffRequiredMixin, TemplateView):
    template_name = "events/operations.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        backlog = backlog_get()
        oldest_age = now - backlog.oldest_received_at if backlog.oldest_received_at else None
        return {
            **super().get_context_data(**kwargs),
            "now": now,
            "workers": workers_status(now=now, ping_timeout=PING_TIMEOUT_SECONDS),
            "heartbeat_window": duration_text(
                dt.timedelta(seconds=3 * settings.WORKER_HEARTBEAT_SECONDS)
            ),
            "backlog": backlog,
            "oldest_age": oldest_age,
            "sweep_after": duration_text(dt.timedelta(seconds=settings.SWEEP_AFTER_SECONDS)),
            "runs": SnapshotRunTable(list(snapshot_runs_recent(limit=20))),
            "schedules": PeriodicTaskTable(list(periodic_tasks_list())),
            "lateness": metrics_lateness(now=now, days=LATENESS_DAYS),
            "lateness_days": LATENESS_DAYS,
            "reconcile": reconcile_last(),
        }


class SnapshotRunNowView(StaffRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            run = snapshot_run_execute(now=timezone.now(), trigger=RunTrigger.MANUAL)
        except SnapshotRunBusy:
            messages.warning(
                request, "Another snapshot run is in progress; it covers the same changes."
            )
        else:
            messages.success(
                request,
                f"Snapshot run {run.pk} finished: {plural(run.days_snapshotted, 'day')} "
                "snapshotted.",
            )
        return HttpResponseRedirect(reverse("operations"))


class RequeueStuckBatchesView(StaffRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        requeued = batches_requeue_stale(
            now=timezone.now(), older_than=dt.timedelta(seconds=settings.SWEEP_AFTER_SECONDS)
        )
        if requeued:
            messages.success(request, f"Queued {plural(len(requeued), 'batch', 'batches')} again.")
        else:
            messages.info(
                request,
                "No batch has been waiting longer than "
                f"{duration_text(dt.timedelta(seconds=settings.SWEEP_AFTER_SECONDS))}; "
                "nothing to queue again.",
            )
        return HttpResponseRedirect(reverse("operations"))
