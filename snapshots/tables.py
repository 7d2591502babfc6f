"""Tables of the day page (snapshot history) and the what-changed page (events)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django_celery_beat.models import PeriodicTask

from aggregation.templatetags.snapagg import change_html, time_html
from common.formatting import duration_text, figure
from common.tables import NUMBER, TEXT, PageTable
from events.models import Event
from snapshots.descriptions import REASON_WORDS, snapshot_explanation
from snapshots.models import Snapshot, SnapshotRun


def snapshot_url(snapshot: Snapshot, metric_name: str) -> str:
    return reverse(
        "snapshot-changes", args=[metric_name, snapshot.day.isoformat(), snapshot.sequence]
    )


def anomaly_badge_html(anomaly: dict | None) -> SafeString:
    """The "unusual correction" badge, its explanation in the title; empty without a flag."""
    if not anomaly:
        return mark_safe("")
    return format_html(
        '<span class="badge badge-anomaly" title="{}"><span aria-hidden="true">⚠</span> '
        "unusual correction (score {})</span>",
        anomaly["detail"],
        anomaly["score"],
    )


class SnapshotTable(PageTable):
    sequence = tables.Column(verbose_name="#", attrs=NUMBER)
    taken_at = tables.Column(verbose_name="Taken at", attrs=TEXT)
    value = tables.Column(verbose_name="Value", attrs=NUMBER)
    change = tables.Column(verbose_name="Change", attrs=NUMBER)
    reason = tables.Column(verbose_name="Why", attrs=TEXT)
    late_events = tables.Column(verbose_name="Late events", attrs=NUMBER)
    status = tables.Column(verbose_name="Day was", attrs=TEXT)
    changes = tables.Column(
        verbose_name="Events", empty_values=(), orderable=False, accessor="pk", attrs=TEXT
    )

    class Meta(PageTable.Meta):
        empty_text = "No snapshot has been taken of this day yet."
        orderable = False

    def __init__(
        self, *args, metric_name: str, unit: str = "", as_of_pk: int | None = None, **kwargs
    ) -> None:
        super().__init__(
            *args,
            row_attrs={"class": lambda record: "as-of" if record.pk == as_of_pk else ""},
            **kwargs,
        )
        self.metric_name = metric_name
        self.unit = unit
        self.as_of_pk = as_of_pk

    def render_sequence(self, record: Snapshot) -> SafeString:
        if record.pk == self.as_of_pk:
            return format_html('{} <span class="marker">◀ as of</span>', record.sequence)
        return format_html("{}", record.sequence)

    def render_taken_at(self, record: Snapshot) -> SafeString:
        return time_html(record.taken_at)

    def render_value(self, record: Snapshot) -> str:
        return figure(record.value, self.unit)

    def render_change(self, record: Snapshot) -> SafeString:
        return change_html(record.change, self.unit)

    def render_reason(self, record: Snapshot) -> SafeString:
        return format_html(
            "<strong>{}</strong> {}<br><small>{}</small>",
            REASON_WORDS[record.reason],
            anomaly_badge_html(record.anomaly),
            snapshot_explanation(record, self.unit),
        )

    def render_status(self, record: Snapshot) -> str:
        return record.get_status_display()

    def render_changes(self, record: Snapshot) -> SafeString:
        if not record.change_events:
            return format_html("{}", "none")
        return format_html(
            '<a href="{}">What changed ({})</a>',
            snapshot_url(record, self.metric_name),
            record.change_events,
        )


class ChangeEventTable(PageTable):
    event_id = tables.Column(verbose_name="Event id", attrs=TEXT)
    event_time = tables.Column(verbose_name="Happened at", attrs=TEXT)
    arrival_time = tables.Column(verbose_name="Arrived at", attrs=TEXT)
    arrived_after = tables.Column(verbose_name="Lateness", attrs=NUMBER)
    source = tables.Column(verbose_name="Source", attrs=TEXT)
    value = tables.Column(verbose_name="Value", attrs=NUMBER)

    class Meta(PageTable.Meta):
        empty_text = "None."
        order_by = ("arrival_time",)

    def __init__(self, *args, unit: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.unit = unit

    def render_event_time(self, record: Event) -> SafeString:
        return time_html(record.event_time)

    def render_arrival_time(self, record: Event) -> SafeString:
        # A client may send its own arrival_time (when its system received the event);
        # show it as what was sent, next to when snapagg received it.
        received_at = record.batch.received_at
        if record.arrival_time == received_at:
            return time_html(record.arrival_time)
        return format_html(
            "sent with arrival time {}; received {}",
            time_html(record.arrival_time),
            time_html(received_at),
        )

    def render_arrived_after(self, value: dt.timedelta) -> str:
        return duration_text(value)

    def render_value(self, record: Event) -> str:
        return figure(record.value, self.unit)


RUN_OUTCOME_ICONS = {"ok": "✓", "skipped": "○", "failed": "✗"}


class SnapshotRunTable(PageTable):
    started_at = tables.Column(verbose_name="Started", attrs=TEXT)
    trigger = tables.Column(verbose_name="Triggered by", attrs=TEXT)
    outcome = tables.Column(verbose_name="Outcome", attrs=TEXT)
    days_snapshotted = tables.Column(verbose_name="Days snapshotted", attrs=NUMBER)
    duration_ms = tables.Column(verbose_name="Took", attrs=NUMBER)

    class Meta(PageTable.Meta):
        empty_text = "No snapshot run yet."
        orderable = False

    def render_started_at(self, record: SnapshotRun) -> SafeString:
        return time_html(record.started_at)

    def render_trigger(self, record: SnapshotRun) -> str:
        return record.get_trigger_display()

    def render_outcome(self, record: SnapshotRun) -> SafeString:
        icon = RUN_OUTCOME_ICONS.get(record.outcome, "?")
        if record.error:
            return format_html(
                '<span class="outcome outcome-{}"><span aria-hidden="true">{}</span> {}</span>'
                "<br><small>{}</small>",
                record.outcome,
                icon,
                record.get_outcome_display(),
                record.error,
            )
        return format_html(
            '<span class="outcome outcome-{}"><span aria-hidden="true">{}</span> {}</span>',
            record.outcome,
            icon,
            record.get_outcome_display(),
        )

    def render_duration_ms(self, value: Decimal) -> str:
        if value < 1000:
            return f"{value.quantize(Decimal('0.1'))} ms"
        return f"{(value / 1000).quantize(Decimal('0.01'))} s"


class PeriodicTaskTable(PageTable):
    name = tables.Column(verbose_name="Schedule", attrs=TEXT)
    task = tables.Column(verbose_name="Task", attrs=TEXT)
    every = tables.Column(verbose_name="When", empty_values=(), accessor="pk", attrs=TEXT)
    enabled = tables.Column(verbose_name="Enabled", attrs=TEXT)
    last_run_at = tables.Column(verbose_name="Last run", attrs=TEXT)
    edit = tables.Column(verbose_name="Change it", empty_values=(), accessor="pk", attrs=TEXT)

    class Meta(PageTable.Meta):
        empty_text = "No schedule: nothing runs by itself. Add one in the admin."
        orderable = False

    def render_task(self, value: str) -> SafeString:
        return format_html("<code>{}</code>", value)

    def render_every(self, record: PeriodicTask) -> str:
        schedule = record.interval or record.crontab or record.solar or record.clocked
        return str(schedule) if schedule else "—"

    def render_enabled(self, value: bool) -> str:
        return "✓ yes" if value else "✗ no (paused)"

    def render_last_run_at(self, record: PeriodicTask) -> SafeString:
        return time_html(record.last_run_at)

    def render_edit(self, record: PeriodicTask) -> SafeString:
        return format_html(
            '<a href="{}">Edit in the admin</a>',
            reverse("admin:django_celery_beat_periodictask_change", args=[record.pk]),
        )
