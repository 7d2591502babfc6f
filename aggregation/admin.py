from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from aggregation.models import DayTotal, Metric, ReportingTimezone
from snapagg_project.admin_mixins import ReadOnlyAdminMixin
from snapagg_project.numbers import decimal_str


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "allowed_lateness", "too_late_policy", "is_default"]
    list_filter = ["too_late_policy", "is_default"]
    search_fields = ["name", "description"]

    def has_delete_permission(self, request: HttpRequest, obj: Metric | None = None) -> bool:
        # A metric with events is protected by the database; refuse before the error.
        if obj is not None and obj.day_totals.exists():
            return False
        return super().has_delete_permission(request, obj)


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
    ]
    list_filter = ["metric", "finalized", "restated"]
    list_select_related = ["metric"]
    date_hierarchy = "day"
    search_fields = ["metric__name"]

    @admin.display(description="value", ordering="value")
    def value_display(self, day_total: DayTotal) -> str:
        return decimal_str(day_total.value)

    @admin.display(description="status")
    def status_display(self, day_total: DayTotal) -> str:
        return day_total.status_at(timezone.now()).value.title()


@admin.register(ReportingTimezone)
class ReportingTimezoneAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "fixed_at"]
