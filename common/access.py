"""Who may see and do what on the pages.

- Anonymous visitors are sent to the login page, whatever page they asked for.
- Readers (staff, or anyone holding READ_PERMISSIONS, which the "viewer" group grants) see the
  dashboard, day pages and what-changed pages.
- Staff also post events (form, CSV) and use the operations page and its buttons.
- A logged-in account that is neither (an "outsider") gets a 403 page that says how to get
  access: an account alone does not open the numbers.
"""

from __future__ import annotations

from django.contrib.auth.mixins import AccessMixin
from django.http import HttpRequest, HttpResponse

VIEWER_GROUP = "viewer"
# Django's model "view" permissions, held by the viewer group (a data migration creates it).
READ_PERMISSIONS = (
    "aggregation.view_metric",
    "aggregation.view_daytotal",
    "snapshots.view_snapshot",
    "events.view_event",
)


def can_read(user) -> bool:
    return user.is_active and (user.is_staff or user.has_perms(READ_PERMISSIONS))


def can_operate(user) -> bool:
    return user.is_active and user.is_staff


class _RuleMixin(AccessMixin):
    """Anonymous: redirect to login. Logged in without the right: 403 (raise_exception
    applies only to authenticated users, so nobody is bounced to a login they already did)."""

    permission_denied_message = ""

    def allowed(self, user) -> bool:
        raise NotImplementedError

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.allowed(request.user):
            self.raise_exception = True
            return self.handle_no_permission()
        return super().dispatch(request, *args, **kwargs)


class ReaderRequiredMixin(_RuleMixin):
    permission_denied_message = (
        "Your account cannot see the metrics yet. Ask an operator to add you to the "
        f"“{VIEWER_GROUP}” group."
    )

    def allowed(self, user) -> bool:
        return can_read(user)


class StaffRequiredMixin(_RuleMixin):
    permission_denied_message = (
        "Only operators (staff accounts) can post events or use the operations page."
    )

    def allowed(self, user) -> bool:
        return can_operate(user)
