"""API authentication: DRF's tokens, with the user's read-only standing read in the same
query, since posting events asks it on every request (one round trip fewer per ingest)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from common.access import VIEWER_GROUP


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        model = self.get_model()
        in_viewer_group = Group.objects.filter(user=OuterRef("user_id"), name=VIEWER_GROUP)
        try:
            token = (
                model.objects.select_related("user")
                .annotate(user_in_viewer_group=Exists(in_viewer_group))
                .get(key=key)
            )
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token.user.in_viewer_group = token.user_in_viewer_group  # read by user_is_viewer
        return (token.user, token)
