"""API authentication: `Authorization: Token <key>` (the header DRF's tokens used), checked
against the keys' hashes. Unknown, revoked or expired keys and inactive users get 401."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions

from apikeys.models import ApiKey
from apikeys.selectors import api_key_for_request
from apikeys.services import api_key_mark_used


class ApiKeyAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing (keyword `Token`, the 401 challenge) with our own lookup."""

    keyword = "Token"
    model = ApiKey

    def authenticate_credentials(self, key: str) -> tuple[object, ApiKey]:
        now = timezone.now()
        api_key = api_key_for_request(raw_key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        refusal = api_key.refusal(now=now)
        if refusal is not None:
            raise exceptions.AuthenticationFailed(refusal)
        if not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        api_key_mark_used(api_key=api_key, now=now)
        return (api_key.user, api_key)
