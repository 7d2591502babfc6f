"""Pages that combine the apps: the dashboard (trend and table of days) and the operations
page with its buttons (run snapshots now, re-queue stuck batches)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from aggregation.calendar import day_of
from aggregation.descriptions import BADGES, day_badge
from aggregation.forms import DayFilterForm
from aggregation.models import Metric
from aggregation.selectors import (
    TrendDay,
    day_total_trend,
    metric_default,
    reconcile_last,
    reporting_timezone,
)
from archive.selectors import run_recent as archive_run_recent
from common.access import ReaderRequiredMixin, StaffRequiredMixin
from common.charts import BarChart, BarInput, bar_chart
from common.formatting import day_text, duration_text, figure, plural
from common.tables import export_requested, table_csv_response
from events.selectors.events import backlog_get
from events.selectors.lateness import metrics_lateness
from events.services.sweep import batches_requeue_stale
from snapshots.models import RunTrigger
from snapshots.selectors.history import (
    day_totals_with_history,
    periodic_tasks_list,
    snapshot_runs_changing,
    snapshot_runs_idle_count,
)
from snapshots.selectors.schedule import snapshot_interval, snapshot_next_run, snapshot_schedule_get
from snapshots.services.run import SnapshotRunBusy, snapshot_run_execute
from snapshots.tables import PeriodicTaskTable, SnapshotRunTable
from web.forms import SnapshotIntervalForm
from web.selectors import workers_status
from web.services import snapshot_interval_set
from web.tables import DayTotalTable

DAYS_PER_PAGE = 30
TREND_DAYS = 30


def trend_chart(*, metric: Metric, trend: list[TrendDay], now: dt.datetime) -> BarChart:
    items = []
    for trend_day in trend:
        day_total = trend_day.day_total
        if day_total is None:
            status, words, href = "empty", "no events", None
        else:
            badge = day_badge(day_total, now)
            status, words = badge.key, badge.label
            href = reverse("day-detail", args=[metric.name, trend_day.day.isoformat()])
        items.append(
            BarInput(
                value=trend_day.value,
                status=status,
                title=(
                    f"{day_text(trend_day.day)}: {figure(trend_day.value, metric.unit)} ({words})"
                ),
                href=href,
            )
        )
    return bar_chart(items)


class DashboardView(ReaderRequiredMixin, TemplateView):
    template_name = "aggregation/dashboard.html"

    def _filters(self) -> tuple[DayFilterForm, dict[str, Any]]:
        data = self.request.GET.copy()
        if not data.get("metric"):
            data["metric"] = metric_default().name
        form = DayFilterForm(data)
        form.is_valid()  # invalid fields are shown with their errors and left out
        return form, form.cleaned_data

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(**kwargs)
        if export_requested(request):
            name = f"{context['metric'].name}-days.csv"
            return table_csv_response(context["table"], filename=name)
        return self.render_to_response(context)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        form, filters = self._filters()
        metric = filters.get("metric") or metric_default()
        day_from, day_to = filters.get("day_from"), filters.get("day_to")
        table = DayTotalTable(
            day_totals_with_history(metric=metric, day_from=day_from, day_to=day_to),
            now=now,
            order_by="-day",
        )
        RequestConfig(self.request, paginate={"per_page": DAYS_PER_PAGE}).configure(table)
        last_day = day_to or day_of(now, reporting_timezone())
        trend = day_total_trend(metric=metric, last_day=last_day, days=TREND_DAYS)
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "metric": metric,
            "table": table,
            "trend": trend,
            "trend_chart": trend_chart(metric=metric, trend=trend, now=now),
            "badges": BADGES,
        }


PING_TIMEOUT_SECONDS = 1.0


LATENESS_DAYS = 30


IDLE_RUNS_WINDOW = dt.timedelta(days=1)


def _interval_form() -> SnapshotIntervalForm:
    task = snapshot_schedule_get()
    minutes = round(snapshot_interval(task).total_seconds() / 60) if task else None
    return SnapshotIntervalForm(initial={"minutes": minutes})


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
            "runs": SnapshotRunTable(list(snapshot_runs_changing(limit=20))),
            "idle_runs": snapshot_runs_idle_count(since=now - IDLE_RUNS_WINDOW),
            "interval_form": kwargs.get("interval_form") or _interval_form(),
            "next_run": snapshot_next_run(now=now),
            "schedules": PeriodicTaskTable(list(periodic_tasks_list())),
            "lateness": metrics_lateness(now=now, days=LATENESS_DAYS),
            "lateness_days": LATENESS_DAYS,
            "reconcile": reconcile_last(),
            "archive_runs": archive_run_recent(limit=5),
        }


class SnapshotIntervalView(StaffRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SnapshotIntervalForm(request.POST)
        if not form.is_valid():
            view = OperationsView(request=request, kwargs={})
            return view.render_to_response(view.get_context_data(interval_form=form))
        minutes = form.cleaned_data["minutes"]
        snapshot_interval_set(minutes=minutes)
        messages.success(request, f"A snapshot is now taken every {plural(minutes, 'minute')}.")
        return HttpResponseRedirect(reverse("operations"))


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
