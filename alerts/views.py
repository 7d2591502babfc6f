"""The alerts page for staff: newest first, each with its deliveries."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.views.generic import TemplateView

from alerts.models import AlertKind
from alerts.selectors import alert_list
from common.access import StaffRequiredMixin

PAGE_SIZE = 50


class AlertListView(StaffRequiredMixin, TemplateView):
    template_name = "alerts/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        kind = self.request.GET.get("kind")
        if kind not in AlertKind.values:
            kind = None
        page = Paginator(alert_list(kind=kind), PAGE_SIZE).get_page(self.request.GET.get("page"))
        return {
            **super().get_context_data(**kwargs),
            "page": page,
            "kind": kind,
            "kinds": AlertKind.choices,
        }
