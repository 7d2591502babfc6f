"""/api/redoc/: Redoc for the published schema, from local files only and public like it.

drf-spectacular's own Redoc template loads Google Fonts, and Redoc's bundle draws Redocly's
logo from cdn.redoc.ly in its sidebar (with no option to leave it out). The template here
(templates/api/redoc.html) names only this server's files, and the page's
Content-Security-Policy keeps the browser from fetching anything elsewhere: the logo is
refused before any request is made and Redoc hides it.
"""

from __future__ import annotations

import secrets

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

REDOC_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",  # Redoc's styles are injected at run time
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",  # Redoc's search index runs in a worker
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


class LocalRedocView(SpectacularRedocView):
    template_name = "api/redoc.html"
    url_name = "api-schema"
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)  # a page about the API, not an operation of it
    def get(self, request: Request, *args, **kwargs) -> Response:
        response = super().get(request, *args, **kwargs)
        nonce = secrets.token_urlsafe(18)
        response.data["nonce"] = nonce  # the template context, rendered after this
        response["Content-Security-Policy"] = REDOC_POLICY.format(nonce=nonce)
        return response
