from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from aggregation.calendar import DayStatus
from aggregation.models import (
    Contribution,
    DaySourceTotal,
    DayTotal,
    Metric,
    ReconcileRun,
    ReportingTimezone,
)
from common.admin import ReadOnlyAdminMixin
from common.numbers import decimal_str


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "description",
        "unit",
        "allowed_lateness",
        "too_late_policy",
        "raw_retention_days",
        "is_default",
    ]
    list_filter = ["too_late_policy", "is_default"]
    search_fields = ["name", "description"]

    def has_delete_permission(self, request: HttpRequest, obj: Metric | None = None) -> bool:
        # A metric with events is protected by the database; refuse before the error.
        if obj is not None and obj.day_totals.exists():
            return False
        return super().has_delete_permission(request, obj)


class DayStatusFilter(admin.SimpleListFilter):
    title = "status now"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status.value, status.value.title()) for status in DayStatus]

    def queryset(self, request, queryset):
        now = timezone.now()
        with_final = queryset.with_final_at()
        match self.value():
            case DayStatus.LIVE:
                return queryset.filter(day_end__gt=now)
            case DayStatus.PROVISIONAL:
                return with_final.filter(day_end__lte=now, final_instant__gt=now)
            case DayStatus.FINAL:
                return with_final.filter(final_instant__lte=now)
        return queryset


@admin.register(DaySourceTotal)
class DaySourceTotalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["day", "metric", "source", "value_display", "event_count"]
    list_filter = ["metric"]
    list_select_related = ["metric"]
    date_hierarchy = "day"
    raw_id_fields = ["day_total"]
    search_fields = ["source", "metric__name"]

    @admin.display(description="value", ordering="value")
    def value_display(self, row: DaySourceTotal) -> str:
        return decimal_str(row.value)


@admin.register(DayTotal)
class DayTotalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "metric",
        "value_display",
        "event_count",
        "late_event_count",
        "status_display",
        "snapshot_count",
        "last_snapshot_at",
        "restated",
        "page_link",
    ]
    list_filter = ["metric", DayStatusFilter, "finalized", "restated"]
    list_select_related = ["metric"]
    date_hierarchy = "day"
    search_fields = ["metric__name"]

    @admin.display(description="value", ordering="value")
    def value_display(self, day_total: DayTotal) -> str:
        return decimal_str(day_total.value)

    @admin.display(description="status")
    def status_display(self, day_total: DayTotal) -> str:
        return day_total.status_at(timezone.now()).value.title()

    @admin.display(description="page")
    def page_link(self, day_total: DayTotal) -> str:
        return format_html('<a href="{}">Day page</a>', day_total.get_absolute_url())


@admin.register(ReportingTimezone)
class ReportingTimezoneAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "fixed_at"]


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "trigger",
        "metric",
        "day_from",
        "day_to",
        "days_checked",
        "drift_count",
        "outcome",
    ]
    list_filter = ["trigger", "metric"]
    date_hierarchy = "started_at"
    readonly_fields = ["drift_table"]
    exclude = ["drift"]

    @admin.display(description="outcome", boolean=True)
    def outcome(self, run: ReconcileRun) -> bool:
        return run.drift_count == 0

    @admin.display(description="drift found")
    def drift_table(self, run: ReconcileRun) -> str:
        if not run.drift:
            return "None: every total matches its events, its contributions and its snapshots."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (row["metric"], row["day"], row["check"], row["stored"], row["recomputed"])
                for row in run.drift
            ),
        )
        return format_html(
            "<table><thead><tr><th>metric</th><th>day</th><th>check</th><th>stored</th>"
            "<th>recomputed</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


@admin.register(Contribution)
class ContributionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "day_total",
        "kind",
        "value",
        "event_count",
        "late_event_count",
        "too_late_event_count",
        "applied_at",
        "snapshot_sequence",
    ]
    list_filter = ["kind"]
    list_select_related = ["day_total"]
    raw_id_fields = ["day_total", "batch"]
