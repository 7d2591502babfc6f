"""The Periods page (a period's total, grouped by day, week, month or year, now or as
published at a time) and the Sources page (a ranking of sources over a period)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from aggregation.calendar import DayStatus, day_of
from aggregation.periods import PERIOD_DESCRIPTIONS, GroupBy, Period, period_range
from aggregation.selectors import metric_default, reporting_timezone
from common.access import ReaderRequiredMixin
from common.charts import BarInput, bar_chart
from common.formatting import day_text, figure, plural
from snapshots.selectors.aggregates import Aggregate, aggregate_get, sources_first_published
from web.slice_forms import CUSTOM, PeriodForm

RANKING_SIZE = 50


def period_label(period: str, day_from: dt.date, day_to: dt.date) -> str:
    if period != CUSTOM:
        return PERIOD_DESCRIPTIONS[Period(period)]
    return f"From {day_text(day_from)} to {day_text(day_to)}"


def status_words(status: DayStatus, open_days: int) -> str:
    """ "provisional: 2 days can still change", in words a reader understands."""
    if status == DayStatus.FINAL:
        return "final: no day in it can change any more"
    return f"{status.value}: {plural(open_days, 'day')} can still change"


class _PeriodPage(ReaderRequiredMixin, TemplateView):
    """Reads the period picker; invalid fields fall back to this month, shown with errors."""

    def _form(self) -> PeriodForm:
        data = self.request.GET.copy()
        data.setdefault("metric", metric_default().name)
        data.setdefault("period", Period.THIS_MONTH.value)
        data.setdefault("group_by", GroupBy.DAY.value)
        form = PeriodForm(data)
        form.is_valid()
        return form

    def _range(self, form: PeriodForm, now: dt.datetime) -> tuple[str, dt.date, dt.date]:
        cleaned = form.cleaned_data
        period = cleaned.get("period") or Period.THIS_MONTH.value
        if period == CUSTOM and not form.errors:
            return period, cleaned["day_from"], cleaned["day_to"]
        if period == CUSTOM:
            period = Period.THIS_MONTH.value
        today = day_of(now, reporting_timezone())
        return period, *period_range(period=Period(period), today=today)

    def _query(self, form: PeriodForm, now: dt.datetime) -> dict[str, Any]:
        period, day_from, day_to = self._range(form, now)
        cleaned = form.cleaned_data
        return {
            "metric": cleaned.get("metric") or metric_default(),
            "period": period,
            "day_from": day_from,
            "day_to": day_to,
            "source": cleaned.get("source") or None,
            "as_of": cleaned.get("as_of"),
        }


def _headline(aggregate: Aggregate, label: str) -> str:
    return (
        f"{label}: {figure(aggregate.total.value, aggregate.metric.unit)} "
        f"({status_words(aggregate.total.status, aggregate.open_days)})"
    )


class PeriodsView(_PeriodPage):
    template_name = "web/periods.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        form = self._form()
        query = self._query(form, now)
        group_by = GroupBy(form.cleaned_data.get("group_by") or GroupBy.DAY.value)
        aggregate = aggregate_get(
            metric=query["metric"],
            day_from=query["day_from"],
            day_to=query["day_to"],
            now=now,
            source=query["source"],
            group_by=group_by,
            as_of=query["as_of"],
        )
        label = period_label(query["period"], query["day_from"], query["day_to"])
        chart = bar_chart(
            [
                BarInput(
                    value=group.value,
                    status=group.status.value if group.event_count else "empty",
                    title=(
                        f"{group.key}: {figure(group.value, aggregate.metric.unit)} "
                        f"({group.status.value})"
                    ),
                )
                for group in aggregate.groups
            ]
        )
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "aggregate": aggregate,
            "label": label,
            "headline": _headline(aggregate, label),
            "chart": chart,
            "first_label": aggregate.groups[0].key if aggregate.groups else "",
            "last_label": aggregate.groups[-1].key if aggregate.groups else "",
        }


class SourcesView(_PeriodPage):
    template_name = "web/sources.html"

    def _rows(self, aggregate: Aggregate, query: dict[str, Any]) -> list[dict[str, Any]]:
        first = sources_first_published(
            metric=aggregate.metric, day_from=aggregate.day_from, day_to=aggregate.day_to
        )
        total = aggregate.total.value
        rows = []
        for group in aggregate.groups:
            history = {
                "metric": aggregate.metric.name,
                "period": CUSTOM,
                "day_from": aggregate.day_from.isoformat(),
                "day_to": aggregate.day_to.isoformat(),
                "group_by": GroupBy.DAY.value,
                "source": group.key,
            }
            published = first.get(group.key)
            rows.append(
                {
                    "group": group,
                    "name": group.key or "(no source)",
                    "share": (group.value / total * 100).quantize(Decimal("0.1"))
                    if total
                    else None,
                    "change": group.value - published if published is not None else None,
                    "history_url": f"{reverse('periods')}?{urlencode(history)}",
                }
            )
        return rows

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        form = self._form()
        query = self._query(form, now)
        aggregate = aggregate_get(
            metric=query["metric"],
            day_from=query["day_from"],
            day_to=query["day_to"],
            now=now,
            group_by=GroupBy.SOURCE,
            as_of=query["as_of"],
            order="-value",
            limit=RANKING_SIZE,
        )
        label = period_label(query["period"], query["day_from"], query["day_to"])
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "aggregate": aggregate,
            "label": label,
            "headline": _headline(aggregate, label),
            "rows": self._rows(aggregate, query),
        }
