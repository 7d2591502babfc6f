"""The day page (headline, status in words, step chart, snapshot history, as-of) and the
what-changed page (the events behind one snapshot's change, grouped)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.generic import TemplateView
from django_tables2 import RequestConfig

from aggregation.calendar import DayStatus
from aggregation.descriptions import (
    completeness_sentence,
    day_badge,
    day_status_sentence,
    local_time,
    unpublished_sentence,
)
from aggregation.models import DayTotal
from aggregation.selectors import day_total_get, snapshot_contributions
from common.access import ReaderRequiredMixin
from common.charts import StepChart, StepInput, step_chart
from common.formatting import figure, signed_figure
from common.tables import export_requested, table_csv_response, tables_csv_response
from events.selectors.lateness import day_completeness
from snapshots.descriptions import snapshot_explanation
from snapshots.forms import AsOfForm
from snapshots.models import Snapshot, SnapshotReason
from snapshots.selectors.explanations import (
    ChangeGroup,
    change_group_events,
    change_group_sums,
    day_waiting_events,
)
from snapshots.selectors.history import (
    day_after_end,
    day_snapshots,
    snapshot_as_of,
    snapshot_get,
    snapshot_source_split,
)
from snapshots.selectors.schedule import snapshot_next_run
from snapshots.tables import ChangeEventTable, SnapshotTable, snapshot_url

SNAPSHOTS_PER_PAGE = 25
EVENTS_PER_PAGE = 50
MARKERS = {
    SnapshotReason.FIRST: "circle-open",
    SnapshotReason.UPDATE: "circle",
    SnapshotReason.LATE_DATA: "triangle",
    SnapshotReason.FINAL: "square",
    SnapshotReason.RESTATEMENT: "diamond",
}
GROUP_WORDS = {
    ChangeGroup.ON_TIME: ("On time", "Arrived before the day ended, or before it was published."),
    ChangeGroup.LATE: ("Late", "Arrived after the day ended and after it was published."),
    ChangeGroup.RESTATEMENT: ("After final", "Arrived after the day was final: restated it."),
}


def day_total_from_path(metric: str, day: str) -> DayTotal:
    try:
        parsed = dt.date.fromisoformat(day)
    except ValueError:
        raise Http404("The day must be a date as YYYY-MM-DD.") from None
    day_total = day_total_get(metric_name=metric, day=parsed)
    if day_total is None:
        raise Http404(f"No events were counted for {metric!r} on {parsed.isoformat()}.")
    return day_total


def history_chart(
    day_total: DayTotal, snapshots: list[Snapshot], as_of: dt.datetime | None, year: int
) -> StepChart:
    unit = day_total.metric.unit
    steps = [
        StepInput(
            taken_at=snapshot.taken_at,
            value=snapshot.value,
            marker=MARKERS[snapshot.reason],
            title=(
                f"#{snapshot.sequence} · {local_time(snapshot.taken_at, year=year)} · "
                f"{figure(snapshot.value, unit)} ({signed_figure(snapshot.change, unit)}) · "
                f"{snapshot_explanation(snapshot, unit)}"
            ),
            href=snapshot_url(snapshot, day_total.metric.name) if snapshot.change_events else None,
        )
        for snapshot in snapshots
    ]
    lines = [
        (
            day_total.day_end,
            "day-end",
            f"The day ended: {local_time(day_total.day_end, year=year)}",
        ),
        (day_total.final_at, "final", f"Final from {local_time(day_total.final_at, year=year)}"),
    ]
    if as_of is not None:
        lines.append((as_of, "as-of", f"As of {local_time(as_of, year=year)}"))
    return step_chart(steps, lines=lines)


def source_split(snapshot: Snapshot | None) -> list[dict[str, Any]]:
    """A snapshot's value by source, each with its share and a link to its own change."""
    if snapshot is None:
        return []
    rows = []
    for row in snapshot_source_split(snapshot=snapshot):
        share = (
            (row.value / snapshot.value * 100).quantize(Decimal("0.1")) if snapshot.value else None
        )
        rows.append(
            {
                "slice": row,
                "name": row.source or "(no source)",
                "share": share,
                "changes_url": f"{snapshot.get_absolute_url()}?{urlencode({'source': row.source})}",
            }
        )
    return rows


def correction_waiting_sentence(day_total: DayTotal, now: dt.datetime) -> str | None:
    """A final day whose value holds changes no snapshot has published yet says so, with
    when the next scheduled snapshot run is due, instead of calling itself settled."""
    if day_total.status_at(now) != DayStatus.FINAL or day_total.snapshot_count == 0:
        return None
    if day_total.snapshot_revision == day_total.revision and not day_total.unsnapshotted_change:
        return None
    next_run = snapshot_next_run(now=now)
    when = f"at {local_time(next_run, year=now.year)}" if next_run else "soon"
    return f"Final: a correction is waiting for the next snapshot {when}."


class DayView(ReaderRequiredMixin, TemplateView):
    template_name = "snapshots/day.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(**kwargs)
        if export_requested(request):
            day_total = context["day_total"]
            name = f"{day_total.metric.name}-{day_total.day.isoformat()}-snapshots.csv"
            return table_csv_response(context["table"], filename=name)
        return self.render_to_response(context)

    def _as_of(self, day_total: DayTotal) -> tuple[AsOfForm, dt.datetime | None, Snapshot | None]:
        form = AsOfForm(self.request.GET if "as_of" in self.request.GET else None)
        if not form.is_bound or not form.is_valid():
            return form, None, None
        as_of = form.cleaned_data["as_of"]
        return form, as_of, snapshot_as_of(day_total=day_total, as_of=as_of)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        now = timezone.now()
        day_total = day_total_from_path(kwargs["metric"], kwargs["day"])
        snapshots = list(day_snapshots(day_total=day_total))
        form, as_of, as_of_snapshot = self._as_of(day_total)
        table = SnapshotTable(
            list(reversed(snapshots)),
            metric_name=day_total.metric.name,
            unit=day_total.metric.unit,
            as_of_pk=as_of_snapshot.pk if as_of_snapshot else None,
        )
        RequestConfig(self.request, paginate={"per_page": SNAPSHOTS_PER_PAGE}).configure(table)
        published_events = snapshots[-1].event_count if snapshots else 0
        shown = as_of_snapshot if as_of else (snapshots[-1] if snapshots else None)
        waiting = correction_waiting_sentence(day_total, now)
        return {
            "shown_snapshot": shown,
            "source_split": source_split(shown),
            **super().get_context_data(**kwargs),
            "day_total": day_total,
            "badge": day_badge(day_total, now),
            "status_sentence": waiting or day_status_sentence(day_total, now),
            "after_end": day_after_end(day_total=day_total),
            "waiting_events": day_waiting_events(day_total=day_total) if waiting else [],
            "unpublished_sentence": unpublished_sentence(day_total, published_events),
            "completeness_sentence": completeness_sentence(
                day_completeness(day_total=day_total, now=now)
            ),
            "last_snapshot": snapshots[-1] if snapshots else None,
            "anomalous_snapshots": [s for s in snapshots if s.anomaly],
            "chart": history_chart(day_total, snapshots, as_of, now.year),
            "table": table,
            "as_of_form": form,
            "as_of": as_of,
            "as_of_snapshot": as_of_snapshot,
            "since_as_of": day_total.value - as_of_snapshot.value if as_of_snapshot else None,
            "chart_first_label": local_time(snapshots[0].taken_at, year=now.year)
            if snapshots
            else "",
            "chart_last_label": local_time(snapshots[-1].taken_at, year=now.year)
            if snapshots
            else "",
        }


class SnapshotChangesView(ReaderRequiredMixin, TemplateView):
    template_name = "snapshots/changes.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        context = self.get_context_data(**kwargs)
        if export_requested(request):
            day_total, snapshot = context["day_total"], context["snapshot"]
            parts = [(group["label"], group["table"]) for group in context["groups"]]
            return tables_csv_response(
                [(label, table) for label, table in parts if table is not None],
                first_header="Group",
                filename=(
                    f"{day_total.metric.name}-{day_total.day.isoformat()}-snapshot-"
                    f"{snapshot.sequence}.csv"
                ),
            )
        return self.render_to_response(context)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        day_total = day_total_from_path(kwargs["metric"], kwargs["day"])
        snapshot = snapshot_get(day_total=day_total, sequence=kwargs["sequence"])
        if snapshot is None:
            raise Http404(f"{day_total.day.isoformat()} has no snapshot {kwargs['sequence']}.")
        source = self.request.GET.get("source")
        if source is not None and "\x00" in source:
            raise Http404("No such source.")
        contributions = snapshot_contributions(
            day_total_id=day_total.pk, sequence=snapshot.sequence, source=source
        )
        sums = change_group_sums(day_total=day_total, contributions=contributions, source=source)
        groups = []
        for group_sum in sums:
            table = None
            if group_sum.events:
                table = ChangeEventTable(
                    change_group_events(
                        day_total=day_total,
                        contributions=contributions,
                        group=group_sum.group,
                        source=source,
                    ),
                    prefix=f"{group_sum.group}-",
                    unit=day_total.metric.unit,
                )
                RequestConfig(self.request, paginate={"per_page": EVENTS_PER_PAGE}).configure(table)
            label, meaning = GROUP_WORDS[group_sum.group]
            groups.append({"sum": group_sum, "label": label, "meaning": meaning, "table": table})
        total = sum((group_sum.value for group_sum in sums), start=Decimal(0))
        slices = {row.source: row for row in snapshot_source_split(snapshot=snapshot)}
        change = snapshot.change
        if source is not None:
            change = slices[source].change if source in slices else Decimal(0)
        return {
            "source": source,
            "source_name": (source or "(no source)") if source is not None else None,
            "sources": [
                {
                    "name": name or "(no source)",
                    "url": f"?{urlencode({'source': name})}",
                    "key": name,
                }
                for name in sorted(slices)
            ],
            "change": change,
            **super().get_context_data(**kwargs),
            "day_total": day_total,
            "snapshot": snapshot,
            "explanation": snapshot_explanation(snapshot, day_total.metric.unit),
            "previous_value": snapshot.value - snapshot.change,
            "groups": groups,
            "total_events": sum(group_sum.events for group_sum in sums),
            "total_value": total,
            "adds_up": total == change,
            "has_next": snapshot.sequence < day_total.snapshot_count,
        }
