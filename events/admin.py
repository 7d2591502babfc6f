from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from events.models import (
    BatchStatus,
    Conflict,
    Contribution,
    Event,
    IngestBatch,
    QuarantinedEvent,
    QuarantineStatus,
    WorkerHeartbeat,
)
from events.services import batch_enqueue_apply, quarantine_accept, quarantine_reject
from snapagg_project.admin_mixins import ReadOnlyAdminMixin
from snapagg_project.numbers import decimal_str


class EventStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("received", "Received (not applied yet)"),
            ("applied", "Applied"),
            ("quarantined", "Quarantined"),
            ("rejected_too_late", "Rejected (too late)"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "received":
                return queryset.filter(batch__status=BatchStatus.RECEIVED)
            case "applied":
                return queryset.filter(batch__status=BatchStatus.APPLIED).filter(
                    Q(quarantine__isnull=True) | Q(quarantine__status=QuarantineStatus.ACCEPTED)
                )
            case "quarantined":
                return queryset.filter(quarantine__status=QuarantineStatus.HELD)
            case "rejected_too_late":
                return queryset.filter(quarantine__status=QuarantineStatus.REJECTED)
        return queryset


class LateFilter(admin.SimpleListFilter):
    title = "arrival"
    parameter_name = "late"

    def lookups(self, request, model_admin):
        return [("yes", "After its day ended"), ("no", "On its day")]

    def queryset(self, request, queryset):
        after_end = Q(arrival_time__gte=F("day_total__day_end"))
        if self.value() == "yes":
            return queryset.filter(after_end)
        if self.value() == "no":
            return queryset.exclude(after_end)
        return queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "event_id",
        "metric",
        "day",
        "event_time",
        "arrival_time",
        "value_display",
        "source",
        "batch",
        "page_link",
    ]
    list_filter = [EventStatusFilter, LateFilter, "metric", "source"]
    list_select_related = ["metric", "batch"]
    search_fields = ["=event_id"]
    date_hierarchy = "day"
    raw_id_fields = ["batch", "day_total"]
    show_full_result_count = False

    @admin.display(description="value", ordering="value")
    def value_display(self, event: Event) -> str:
        return decimal_str(event.value)

    @admin.display(description="page")
    def page_link(self, event: Event) -> str:
        url = reverse("day-detail", args=[event.metric.name, event.day.isoformat()])
        return format_html('<a href="{}">Day page</a>', url)


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "received_at",
        "channel",
        "status",
        "accepted_count",
        "duplicate_count",
        "conflict_count",
        "rejected_count",
        "enqueue_count",
        "applied_at",
        "page_link",
    ]
    list_filter = ["status", "channel"]
    date_hierarchy = "received_at"
    actions = ["enqueue_again"]

    @admin.display(description="page")
    def page_link(self, batch: IngestBatch) -> str:
        return format_html('<a href="{}">Batch page</a>', reverse("batch-detail", args=[batch.pk]))

    @admin.action(description="Queue the apply task again for unapplied batches")
    def enqueue_again(self, request: HttpRequest, queryset: QuerySet[IngestBatch]) -> None:
        pending = list(queryset.filter(status=BatchStatus.RECEIVED).values_list("pk", flat=True))
        queued = sum(1 for batch_id in pending if batch_enqueue_apply(batch_id))
        self.message_user(request, f"Queued {queued} of {len(pending)} unapplied batches.")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_id", "received_at", "differing_fields", "batch"]
    search_fields = ["=event_id"]
    date_hierarchy = "received_at"
    raw_id_fields = ["batch"]


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


@admin.register(QuarantinedEvent)
class QuarantinedEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event", "day_total", "status", "held_at", "decided_at", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["event", "day_total", "decided_by"]
    search_fields = ["=event__event_id"]
    raw_id_fields = ["event", "day_total", "contribution"]
    actions = ["accept", "reject"]

    def _decide(self, request: HttpRequest, queryset: QuerySet, service, verb: str) -> None:
        decided = service(
            event_pks=list(queryset.values_list("pk", flat=True)),
            decided_by_id=request.user.pk,
            reason=f"{verb} in the admin by {request.user.get_username()}",
            now=timezone.now(),
        )
        self.message_user(request, f"{verb} {decided} held events.", messages.SUCCESS)

    @admin.action(
        description="Accept: count them (the next snapshot is a restatement)",
        permissions=["decide"],
    )
    def accept(self, request: HttpRequest, queryset: QuerySet[QuarantinedEvent]) -> None:
        self._decide(request, queryset, quarantine_accept, "Accepted")

    @admin.action(description="Reject: keep them on record, never counted", permissions=["decide"])
    def reject(self, request: HttpRequest, queryset: QuerySet[QuarantinedEvent]) -> None:
        self._decide(request, queryset, quarantine_reject, "Rejected")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_decide_permission(self, request: HttpRequest) -> bool:
        # Rows are never edited here, but deciding on them is a right of its own.
        return request.user.has_perm("events.change_quarantinedevent")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["hostname", "pid", "started_at", "last_seen"]
