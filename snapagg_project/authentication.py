"""Kept for old imports: API authentication lives in apikeys.authentication."""

from __future__ import annotations

from apikeys.authentication import ApiKeyAuthentication

TokenAuthentication = ApiKeyAuthentication  # the old name; the header is still `Token <key>`

__all__ = ["ApiKeyAuthentication", "TokenAuthentication"]
