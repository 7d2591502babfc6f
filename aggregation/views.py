"""The dashboard: a trend of the last 30 days and the table of days for one metric."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from aggregation.calendar import day_of
from aggregation.descriptions import BADGES, day_badge
from aggregation.forms import DayFilterForm
from aggregation.models import Metric
from aggregation.selectors import TrendDay, day_total_trend, metric_default, reporting_timezone
from aggregation.tables import DayTotalTable
from snapagg_project.access import ReaderRequiredMixin
from snapagg_project.charts import BarChart, BarInput, bar_chart
from snapagg_project.formatting import day_text, figure
from snapshots.selectors import day_totals_with_history

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
                title=f"{day_text(trend_day.day)}: {figure(trend_day.value)} ({words})",
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
