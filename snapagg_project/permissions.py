"""Kept for old imports: who may do what through the API lives in apikeys.permissions
(a key's scopes, within its user's role)."""

from __future__ import annotations

from apikeys.permissions import CanIngest, CanOperate, CanRead, HasScope, ScopeForMethod
from apikeys.selectors import VIEWER_GROUP, user_is_viewer

CanPostEvents = CanIngest  # POST /api/events/: the "ingest" scope, not a viewer's key
IsOperator = CanOperate  # snapshot runs: the "operate" scope on a staff user's key

__all__ = [
    "VIEWER_GROUP",
    "CanIngest",
    "CanOperate",
    "CanPostEvents",
    "CanRead",
    "HasScope",
    "IsOperator",
    "ScopeForMethod",
    "user_is_viewer",
]
