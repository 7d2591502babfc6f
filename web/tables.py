"""The dashboard's table of days (django-tables2: sortable, paginated)."""

from __future__ import annotations

import datetime as dt

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from aggregation.calendar import DayStatus
from aggregation.descriptions import completeness_sentence, day_badge
from aggregation.models import DayTotal
from aggregation.templatetags.snapagg import badge_html, change_html, time_html
from common.formatting import day_text, figure, signed_figure
from common.tables import NUMBER, NUMBER_LONG_HEADER, TEXT, PageTable
from events.selectors.lateness import arrival_profile, completeness_from_profile
from snapshots.descriptions import REASON_WORDS
from snapshots.models import SnapshotReason
from snapshots.tables import anomaly_badge_html


def day_url(day_total: DayTotal) -> str:
    return reverse("day-detail", args=[day_total.metric.name, day_total.day.isoformat()])


class DayTotalTable(PageTable):
    day = tables.Column(verbose_name="Day", attrs=TEXT)
    value = tables.Column(verbose_name="Value", attrs=NUMBER)
    status = tables.Column(verbose_name="Status", empty_values=(), orderable=False, accessor="pk")
    after_end_change = tables.Column(
        verbose_name="Changed after the day ended", attrs=NUMBER_LONG_HEADER
    )
    snapshot_count = tables.Column(verbose_name="Snapshots", attrs=NUMBER)
    last_change_at = tables.Column(verbose_name="Last change", attrs=TEXT)
    event_count = tables.Column(verbose_name="Events", attrs=NUMBER)
    completeness = tables.Column(
        verbose_name="Arrived so far",
        empty_values=(),
        orderable=False,
        accessor="pk",
        attrs=NUMBER_LONG_HEADER,
    )

    class Meta(PageTable.Meta):
        empty_text = "No days match: no events were counted for this metric in this range."
        orderable = True

    def __init__(self, *args, now: dt.datetime, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.now = now
        self._profiles: dict[int, list[float] | None] = {}

    def _profile(self, day_total: DayTotal) -> list[float] | None:
        # One arrival profile per metric for the whole page: the query count stays flat.
        if day_total.metric_id not in self._profiles:
            self._profiles[day_total.metric_id] = arrival_profile(
                metric=day_total.metric, now=self.now
            )
        return self._profiles[day_total.metric_id]

    def render_day(self, record: DayTotal) -> SafeString:
        return format_html('<a href="{}">{}</a>', day_url(record), day_text(record.day))

    def render_value(self, record: DayTotal) -> SafeString:
        unit = record.metric.unit
        pending = record.unsnapshotted_change
        if record.snapshot_count and pending:
            return format_html(
                '{}<br><small title="Not yet in a snapshot">{} waiting for a snapshot</small>',
                figure(record.value, unit),
                signed_figure(pending, unit),
            )
        return format_html("{}", figure(record.value, unit))

    def render_status(self, record: DayTotal) -> SafeString:
        return badge_html(day_badge(record, self.now))

    def render_after_end_change(self, record: DayTotal) -> SafeString:
        if not record.late_change and not record.after_final_change:
            return format_html('<span title="{}">—</span>', "Nothing arrived after the day ended.")
        unit = record.metric.unit
        parts = [f"{signed_figure(record.late_change, unit)} late"]
        if record.after_final_change:
            parts.append(f"{signed_figure(record.after_final_change, unit)} after final")
        return format_html(
            "{}<br><small>{}</small>", change_html(record.after_end_change, unit), ", ".join(parts)
        )

    def render_last_change_at(self, record: DayTotal) -> SafeString:
        reason = REASON_WORDS[SnapshotReason(record.last_change_reason)]
        return format_html(
            "{} {}<br><small>{}</small> {}",
            change_html(record.last_change, record.metric.unit),
            time_html(record.last_change_at),
            reason,
            anomaly_badge_html(getattr(record, "last_change_anomaly", None)),
        )

    def render_completeness(self, record: DayTotal) -> SafeString:
        if record.status_at(self.now) == DayStatus.FINAL:
            return format_html('<span title="{}">—</span>', "Final: nothing more is expected.")
        profile = self._profile(record)
        if profile is None:
            return format_html('<span title="{}">—</span>', "No final day yet to estimate from.")
        share = completeness_from_profile(profile, day_end=record.day_end, now=self.now)
        return format_html(
            '<span title="{}">≈ {}</span>', completeness_sentence(share), f"{share:.0%}"
        )

    def render_event_count(self, record: DayTotal) -> str:
        if record.late_event_count:
            return f"{record.event_count:,} ({record.late_event_count:,} late)"
        return f"{record.event_count:,}"
