"""Who may do what through the API.

- any valid token: read everything, post events;
- a token whose user is in the "viewer" group (and not staff): read only;
- a staff user's token (an operator): also run the snapshot job.
A missing, wrong or deactivated user's token is refused with 401 before any of this.
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from common.access import VIEWER_GROUP, can_operate  # the pages' rules


def user_is_viewer(user: object) -> bool:
    """A read-only user: in the viewer group and not staff (staff operate regardless)."""
    if getattr(user, "is_staff", False):
        return False
    known = getattr(user, "in_viewer_group", None)  # set by our TokenAuthentication
    if known is not None:
        return known
    groups = getattr(user, "groups", None)
    return groups is not None and groups.filter(name=VIEWER_GROUP).exists()


class CanPostEvents(BasePermission):
    message = "This token belongs to a read-only viewer; it cannot post events."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not user_is_viewer(user))


class IsOperator(BasePermission):
    message = "Running the snapshot job needs an operator's (staff user's) token."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and can_operate(user))
