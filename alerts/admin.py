from __future__ import annotations

from django import forms
from django.contrib import admin

from alerts.models import Alert, AlertChannel, AlertDelivery, AlertDeliveryAttempt
from common.admin import ReadOnlyAdminMixin


class AlertDeliveryInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = AlertDelivery
    fields = ["channel", "status", "attempts", "last_error", "delivered_at"]
    readonly_fields = fields
    extra = 0


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "kind", "metric", "day", "sequence", "recovery", "detail"]
    list_filter = ["kind", "recovery", "metric"]
    list_select_related = ["metric"]
    date_hierarchy = "created_at"
    search_fields = ["detail"]
    inlines = [AlertDeliveryInline]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["alert", "channel", "status", "attempts", "last_error", "delivered_at"]
    list_filter = ["status", "channel"]
    raw_id_fields = ["alert"]


@admin.register(AlertDeliveryAttempt)
class AlertDeliveryAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["delivery", "number", "attempted_at", "ok", "http_status", "error"]
    list_filter = ["ok"]
    raw_id_fields = ["delivery"]


class AlertChannelForm(forms.ModelForm):
    # A URL typed without a scheme becomes https://; any scheme but http(s) is refused by
    # the model field's validator.
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = AlertChannel
        fields = ["name", "url", "secret", "enabled"]


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    """Extra webhooks. The URL must be http:// or https:// (the model field's validator)."""

    form = AlertChannelForm
    list_display = ["name", "url", "enabled"]
    list_filter = ["enabled"]
