"""What a key may do: its scopes, within what its user's role allows today.

- `ingest`: POST /api/events/ (and never for a viewer-group user who is not staff);
- `read`: every GET (and HEAD, OPTIONS);
- `operate`: snapshot and archive runs, metric changes (and only for a staff user's key).
A missing, unknown, revoked or expired key is refused with 401 before any of this; a valid
key without what the view needs gets 403.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from apikeys.models import ApiKey, Scope
from apikeys.selectors import user_is_viewer


class HasScope(BasePermission):
    """The request's key holds `scope` and the user's role still allows it."""

    scope: str = ""
    message = "This API key may not do this."

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF answers 401 with the challenge
        if not self.role_allows(user):  # first: "a viewer cannot post" says more
            return False
        api_key = request.auth
        if not isinstance(api_key, ApiKey) or self.scope not in api_key.scopes:
            self.message = f"This API key does not have the “{self.scope}” scope."
            return False
        return True

    def role_allows(self, user: object) -> bool:
        return True


class CanIngest(HasScope):
    scope = Scope.INGEST

    def role_allows(self, user: object) -> bool:
        if user_is_viewer(user):
            self.message = "This key belongs to a read-only viewer; it cannot post events."
            return False
        return True


class CanRead(HasScope):
    scope = Scope.READ


class CanOperate(HasScope):
    scope = Scope.OPERATE

    def has_permission(self, request: Request, view: object) -> bool:
        allowed = super().has_permission(request, view)
        if not allowed and request.user:
            self.message = (
                "This needs an operator's key: a staff user's key with the “operate” scope."
            )
        return allowed

    def role_allows(self, user: object) -> bool:
        return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


class ScopeForMethod(BasePermission):
    """The default for API views: reads need `read`, any other method `operate`, so a view
    that forgets to name its permission is closed rather than open."""

    def has_permission(self, request: Request, view: object) -> bool:
        needed = CanRead() if request.method in SAFE_METHODS else CanOperate()
        allowed = needed.has_permission(request, view)
        self.message = needed.message
        return allowed
