"""Archive runs and manifests in the admin: read-only (the job writes them)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from archive.models import ArchiveManifest, ArchiveRun


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ArchiveRun)
class ArchiveRunAdmin(_ReadOnly):
    list_display = [
        "pk",
        "trigger",
        "started_at",
        "finished_at",
        "outcome",
        "days",
        "events",
        "bytes",
        "files_written",
    ]
    list_filter = ["outcome", "trigger"]


@admin.register(ArchiveManifest)
class ArchiveManifestAdmin(_ReadOnly):
    list_display = ["metric", "day", "state", "event_count", "value_sum", "bytes", "location"]
    list_filter = ["state", "metric"]
    search_fields = ["location", "sha256"]
    raw_id_fields = ["day_total", "run"]
