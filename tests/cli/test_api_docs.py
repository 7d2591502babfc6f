"""/api/docs/ and /api/redoc/: Swagger UI and Redoc for the published schema, served from our
own static files (drf-spectacular-sidecar), public like /api/schema/. That Redoc renders
without a request to another host is checked in a browser (tests/browser/test_api_docs.py)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.factories import UserFactory, api_key_for

pytestmark = pytest.mark.django_db


def test_api_docs_are_served_without_a_token_from_local_files():
    response = Client().get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "/api/schema/" in page
    assert '"validatorUrl": null' in page  # no badge fetched from swagger.io
    # Every script and stylesheet is ours: nothing loads from another host.
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert all(source.startswith("/") for source in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


@pytest.mark.parametrize("with_key", [False, True], ids=["anonymous", "with-a-key"])
def test_redoc_is_served_from_local_files_only(with_key):
    headers = {}
    if with_key:
        user = UserFactory(username="docs-reader")
        headers["HTTP_AUTHORIZATION"] = f"Token {api_key_for(user)}"

    response = Client().get("/api/redoc/", **headers)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in page
    assert 'Redoc.init("/api/schema/"' in page
    # No web fonts, no CDN: every URL the page names is on this server, and exists.
    assert "googleapis" not in page
    assert "gstatic" not in page
    urls = re.findall(r'<(?:script|link|img|a)\b[^>]*?(?:src|href)="([^"]+)"', page)
    assert urls
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert not re.search(r"https?://", page), "an absolute URL in the page"
    for url in urls:
        if url.startswith("/static/"):
            assert finders.find(url.removeprefix("/static/")), url
