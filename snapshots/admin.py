from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.utils.html import format_html

from common.admin import ReadOnlyAdminMixin
from common.numbers import decimal_str, signed_decimal_str
from snapshots.models import Snapshot, SnapshotRun, SnapshotSource


class AnomalyFilter(admin.SimpleListFilter):
    title = "anomaly"
    parameter_name = "anomaly"

    def lookups(self, request, model_admin):
        return [("yes", "Unusual correction"), ("no", "Not flagged")]

    def queryset(self, request, queryset):
        match self.value():
            case "yes":
                return queryset.filter(anomaly__isnull=False)
            case "no":
                return queryset.filter(anomaly__isnull=True)
        return queryset


def utc_text(instant: dt.datetime | None) -> str:
    return "—" if instant is None else f"{instant.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "metric",
        "sequence",
        "taken_at_utc",
        "value_display",
        "change_display",
        "change_events",
        "late_events",
        "status",
        "reason",
        "anomaly_display",
        "page_link",
    ]
    list_filter = ["metric", "reason", "status", AnomalyFilter]
    ordering = ["-taken_at", "-id"]  # newest first, as on the pages
    list_select_related = ["metric"]
    date_hierarchy = "day"
    raw_id_fields = ["day_total", "run"]
    search_fields = ["metric__name"]

    @admin.display(description="taken at (UTC)", ordering="taken_at")
    def taken_at_utc(self, snapshot: Snapshot) -> str:
        return utc_text(snapshot.taken_at)

    @admin.display(description="value", ordering="value")
    def value_display(self, snapshot: Snapshot) -> str:
        return decimal_str(snapshot.value)

    @admin.display(description="change", ordering="change")
    def change_display(self, snapshot: Snapshot) -> str:
        return signed_decimal_str(snapshot.change)

    @admin.display(description="anomaly")
    def anomaly_display(self, snapshot: Snapshot) -> str:
        return f"score {snapshot.anomaly['score']}" if snapshot.anomaly else ""

    @admin.display(description="page")
    def page_link(self, snapshot: Snapshot) -> str:
        return format_html('<a href="{}">What changed</a>', snapshot.get_absolute_url())


@admin.register(SnapshotRun)
class SnapshotRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "started_at_utc",
        "trigger",
        "outcome",
        "days_snapshotted",
        "duration_ms",
    ]
    list_filter = ["outcome", "trigger"]
    ordering = ["-started_at", "-id"]

    @admin.display(description="started at (UTC)", ordering="started_at")
    def started_at_utc(self, run: SnapshotRun) -> str:
        return utc_text(run.started_at)

    date_hierarchy = "started_at"


@admin.register(SnapshotSource)
class SnapshotSourceAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "metric",
        "sequence",
        "source",
        "value_display",
        "event_count",
        "change_display",
        "change_events",
    ]
    list_filter = ["metric"]
    list_select_related = ["metric"]
    date_hierarchy = "day"
    raw_id_fields = ["snapshot"]
    search_fields = ["source", "metric__name"]

    @admin.display(description="value", ordering="value")
    def value_display(self, row: SnapshotSource) -> str:
        return decimal_str(row.value)

    @admin.display(description="change", ordering="change")
    def change_display(self, row: SnapshotSource) -> str:
        return signed_decimal_str(row.change)
