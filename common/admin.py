"""Admin building blocks shared by the apps."""

from __future__ import annotations

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """For append-only records: visible to staff, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
