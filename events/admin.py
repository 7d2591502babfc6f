from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from common.admin import ReadOnlyAdminMixin
from common.numbers import decimal_str
from events.models import (
    BatchStatus,
    Conflict,
    Event,
    IngestBatch,
    QuarantinedEvent,
    QuarantineStatus,
    RejectedEvent,
)
from events.services.enqueue import batch_enqueue_apply
from events.services.quarantine import quarantine_accept, quarantine_reject


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


class ApplyFailedFilter(admin.SimpleListFilter):
    title = "apply"
    parameter_name = "apply"

    def lookups(self, request, model_admin):
        return [
            ("failed", "Failed and still unapplied"),
            ("failed_before", "Failed at least once"),
        ]

    def queryset(self, request, queryset):
        failed = queryset.filter(last_error_at__isnull=False)
        if self.value() == "failed":
            return failed.filter(status=BatchStatus.RECEIVED)
        if self.value() == "failed_before":
            return failed
        return queryset


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
        "last_error_short",
    ]
    list_filter = [ApplyFailedFilter, "status", "channel"]
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

    @admin.display(description="last apply error", ordering="last_error_at")
    def last_error_short(self, batch: IngestBatch) -> str:
        if not batch.last_error:
            return ""
        when = f"{batch.last_error_at:%Y-%m-%d %H:%M:%S}: " if batch.last_error_at else ""
        return when + batch.last_error[:120]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _shown(field_name: str, value: object) -> str:
    if value in (None, ""):
        return "(none)"
    if field_name == "value":
        return decimal_str(Decimal(str(value)))
    return str(value)


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_id", "received_at", "reason", "batch"]
    list_select_related = ["batch"]
    search_fields = ["=event_id"]
    date_hierarchy = "received_at"
    raw_id_fields = ["batch"]

    @admin.display(description="why it was refused")
    def reason(self, conflict: Conflict) -> str:
        """E.g. "value differs: counted 12.50, refused 13.00"."""
        differences = [
            f"{name} differs: counted {_shown(name, conflict.stored.get(name))}, "
            f"refused {_shown(name, conflict.incoming.get(name))}"
            for name in conflict.differing_fields
        ]
        return "; ".join(differences) or "same event_id, different content"


@admin.register(RejectedEvent)
class RejectedEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["batch", "received_at", "index", "event_id", "field", "reason", "channel"]
    list_filter = ["field", "batch__channel"]
    list_select_related = ["batch"]
    search_fields = ["=event_id"]
    raw_id_fields = ["batch"]
    show_full_result_count = False

    @admin.display(description="received at", ordering="batch__received_at")
    def received_at(self, rejection: RejectedEvent):
        return rejection.batch.received_at

    @admin.display(description="channel")
    def channel(self, rejection: RejectedEvent) -> str:
        return rejection.batch.get_channel_display()


class QuarantineDecisionForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Recorded with your name on every selected event (e.g. the ticket or check).",
    )


@admin.register(QuarantinedEvent)
class QuarantinedEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "event",
        "metric",
        "day",
        "value",
        "lateness",
        "status",
        "held_at",
        "decided_at",
        "decided_by",
        "decision_reason",
    ]
    list_filter = ["status", "day_total__metric"]
    list_select_related = ["event", "day_total__metric", "decided_by"]
    search_fields = ["=event__event_id"]
    raw_id_fields = ["event", "day_total", "contribution"]
    actions = ["accept", "reject"]
    decision_template = "admin/events/quarantinedevent/decide.html"

    @admin.display(description="metric", ordering="day_total__metric__name")
    def metric(self, entry: QuarantinedEvent) -> str:
        return entry.day_total.metric.name

    @admin.display(description="day", ordering="day_total__day")
    def day(self, entry: QuarantinedEvent):
        return entry.day_total.day

    @admin.display(description="value")
    def value(self, entry: QuarantinedEvent) -> str:
        return decimal_str(entry.event.value)

    @admin.display(description="arrived after its day ended by")
    def lateness(self, entry: QuarantinedEvent):
        return entry.event.arrival_time - entry.day_total.day_end

    def _decide(
        self, request: HttpRequest, queryset: QuerySet, service, action: str, done: str
    ) -> TemplateResponse | None:
        """Ask for the reason on an intermediate page, then let the service decide."""
        held = list(queryset.filter(status=QuarantineStatus.HELD).select_related("event"))
        if not held:
            self.message_user(request, "None of the selected events is held.", messages.WARNING)
            return None
        form = QuarantineDecisionForm(request.POST if "decide" in request.POST else None)
        if form.is_valid():
            decided = service(
                event_pks=[entry.pk for entry in held],
                decided_by_id=request.user.pk,
                reason=form.cleaned_data["reason"],
                now=timezone.now(),
            )
            self.message_user(request, f"{done} {decided} held events.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.title()} {len(held)} held events",
            "opts": self.model._meta,
            "held": held,
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, self.decision_template, context)

    @admin.action(
        description="Accept: count them (the next snapshot is a restatement)",
        permissions=["decide"],
    )
    def accept(self, request: HttpRequest, queryset: QuerySet[QuarantinedEvent]):
        return self._decide(request, queryset, quarantine_accept, "accept", "Accepted")

    @admin.action(description="Reject: keep them on record, never counted", permissions=["decide"])
    def reject(self, request: HttpRequest, queryset: QuerySet[QuarantinedEvent]):
        return self._decide(request, queryset, quarantine_reject, "reject", "Rejected")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_decide_permission(self, request: HttpRequest) -> bool:
        # Rows are never edited here, but deciding on them is a right of its own.
        return request.user.has_perm("events.change_quarantinedevent")
