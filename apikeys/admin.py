"""API keys in the admin: list, make (the key is shown once, on the page after saving),
edit name/scopes/expiry, revoke."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from apikeys.models import SCOPE_FIELDS, ApiKey
from apikeys.selectors import api_key_role_scopes
from apikeys.services import api_key_create, api_key_revoke


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["user", "name", *SCOPE_FIELDS.values(), "expires_at"]

    def clean(self) -> dict:
        cleaned = super().clean()
        # Making a key with none ticked gives it the role's scopes (see save_model).
        if self.instance.pk is not None and not any(cleaned.get(f) for f in SCOPE_FIELDS.values()):
            raise forms.ValidationError("A key needs at least one scope.")
        return cleaned


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("no", "Usable or expired"), ("yes", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = [
        "name",
        "user",
        "prefix",
        "scope_list",
        "created_at",
        "expires_at",
        "is_revoked",
        "last_used_at",
    ]
    list_filter = [RevokedFilter, *SCOPE_FIELDS.values(), "expires_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "created_at", "revoked_at", "last_used_at"]
    actions = ["revoke"]
    ordering = ["-created_at"]

    @admin.display(description="scopes")
    def scope_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes)

    @admin.display(description="revoked", boolean=True)
    def is_revoked(self, api_key: ApiKey) -> bool:
        return api_key.is_revoked

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        # A key stays with the user it was made for.
        return [*self.readonly_fields, "user"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, raw_key = api_key_create(
            user=obj.user,
            name=obj.name,
            # None ticked: every scope the user's role allows, as create_api_token does.
            scopes=obj.scopes or api_key_role_scopes(user=obj.user),
            expires_at=obj.expires_at,
            now=timezone.now(),
        )
        # The admin goes on with `obj` (log entry, redirect): make it the saved key.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db
        request._api_key_raw = raw_key  # for response_add; never stored anywhere

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None):
        raw_key = getattr(request, "_api_key_raw", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        # Shown on this page, not through messages: those are kept in a cookie or the
        # session table until displayed, and the key must not be kept anywhere.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key created",
            "api_key": obj,
            "raw_key": raw_key,
            "change_url": reverse("admin:apikeys_apikey_change", args=[obj.pk]),
            "changelist_url": reverse("admin:apikeys_apikey_changelist"),
        }
        response: HttpResponse = TemplateResponse(
            request, "admin/apikeys/apikey/created.html", context
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected keys (they stop working at once)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        now = timezone.now()
        revoked = sum(api_key_revoke(api_key=api_key, now=now) for api_key in queryset)
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
