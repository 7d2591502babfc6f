"""The worker heartbeats, read-only: each running worker writes its own row."""

from __future__ import annotations

from django.contrib import admin

from common.admin import ReadOnlyAdminMixin
from web.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["hostname", "pid", "started_at", "last_seen"]
