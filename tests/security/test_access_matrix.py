"""Who reaches what: every page and API path, for each role (docs/reliability.md,
"Security review"). Roles: an anonymous outsider, an outsider with an account but no
rights, a viewer (read-only group) and an operator (staff). Pages use the session, the API
uses tokens (a logged-in browser session opens no API path)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from rest_framework.test import APIClient

from common.access import VIEWER_GROUP
from events.models import IngestBatch
from tests.conftest import T0, event
from tests.factories import UserFactory, api_key_for

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "account", "viewer", "operator"]
DAY = T0.date().isoformat()


def _user(role: str):
    if role == "anonymous":
        return None
    user = UserFactory(username=f"{role}-user", is_staff=role == "operator")
    if role == "viewer":
        user.groups.add(Group.objects.get_or_create(name=VIEWER_GROUP)[0])
    return user


@pytest.fixture
def data(pipeline) -> dict[str, int]:
    """One day with a snapshot and one batch, so every page and API path has something."""
    result = pipeline.post([event("e-1", T0, "1")], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))
    return {"batch": IngestBatch.objects.get(pk=result.batch_id).pk}


# Pages (GET): who gets the page. R = readers (viewer, operator), S = staff only.
READER_PAGES = ["/", f"/days/default/{DAY}/", f"/days/default/{DAY}/snapshots/1/"]
STAFF_PAGES = ["/events/new/", "/events/upload/", "/events/batches/{batch}/", "/operations/"]


def _page_status(role: str, path: str) -> int | str:
    if role == "anonymous":
        return "login"
    if path in READER_PAGES:
        return 200 if role in {"viewer", "operator"} else 403
    return 200 if role == "operator" else 403


@pytest.mark.parametrize("path", READER_PAGES + STAFF_PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_pages_by_role(client: Client, data, role, path):
    user = _user(role)
    if user is not None:
        client.force_login(user)
    url = path.format(**data)

    response = client.get(url)

    expected = _page_status(role, path)
    if expected == "login":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == expected
        assert response["X-Frame-Options"] == "DENY"  # no framing: clickjacking


# Page actions (POST) change state: staff only, and a CSRF token is required.
PAGE_ACTIONS = ["/operations/snapshot-run/", "/operations/requeue/", "/events/new/"]


@pytest.mark.parametrize("path", PAGE_ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_page_actions_by_role(data, role, path):
    client = Client()
    user = _user(role)
    if user is not None:
        client.force_login(user)

    response = client.post(path, {})

    if role == "anonymous":
        assert response.status_code == 302
    elif role == "operator":
        assert response.status_code in {200, 302}  # done, or the form shown again
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("path", PAGE_ACTIONS)
def test_page_actions_need_the_csrf_token_even_for_an_operator(data, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(_user("operator"))

    response = client.post(path, {})

    assert response.status_code == 403
    assert b"CSRF" in response.content


@pytest.mark.parametrize("role", ROLES)
def test_the_admin_is_behind_the_staff_login(client: Client, role):
    user = _user(role)
    if user is not None:
        client.force_login(user)

    response = client.get("/admin/")

    if role == "operator":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


# The API: tokens. R = any token (viewer included), P = tokens allowed to post events
# (not a viewer's), O = operators only; public paths need nothing.
API_READS = [
    "/api/metrics/",
    "/api/days/",
    f"/api/days/default/{DAY}/",
    f"/api/days/default/{DAY}/snapshots/1/events/",
    "/api/events/e-1/",
    "/api/metrics/default/lateness/",
]
API_PUBLIC = ["/api/health/", "/api/schema/", "/api/docs/", "/api/redoc/"]


def _api_client(role: str) -> APIClient:
    client = APIClient()
    user = _user(role)
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    return client


@pytest.mark.parametrize("path", API_READS + API_PUBLIC)
@pytest.mark.parametrize("role", ROLES)
def test_api_reads_by_role(data, role, path):
    response = _api_client(role).get(path)

    if path in API_PUBLIC:
        assert response.status_code == 200
    else:
        assert response.status_code == (401 if role == "anonymous" else 200)


@override_settings(INGEST_RATE_LIMIT=None)
@pytest.mark.parametrize("role", ROLES)
def test_api_posting_events_by_role(data, role):
    response = _api_client(role).post("/api/events/", event(f"{role}-1", T0), format="json")

    expected = {"anonymous": 401, "account": 202, "viewer": 403, "operator": 202}[role]
    assert response.status_code == expected


@pytest.mark.parametrize("role", ROLES)
def test_api_running_snapshots_by_role(data, role):
    response = _api_client(role).post("/api/snapshots/run/")

    expected = {"anonymous": 401, "account": 403, "viewer": 403, "operator": 200}[role]
    assert response.status_code == expected


def test_a_logged_in_browser_session_opens_no_api_path(client: Client, data):
    """The API authenticates tokens only, so a page visitor's session cookie cannot be
    used cross-site against it (no CSRF exposure through the API)."""
    client.force_login(_user("operator"))

    assert client.get("/api/days/").status_code == 401
    assert client.post("/api/snapshots/run/").status_code == 401


def test_session_and_cookie_settings():
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.CSRF_COOKIE_SAMESITE == "Lax"
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE


@override_settings(INGEST_MAX_BODY_BYTES=2048)
def test_an_upload_over_the_limit_is_refused_before_any_event_is_stored(client: Client, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(_user("operator"))
    rows = "".join(f"big-{i},{T0.isoformat()},1\n" for i in range(200))
    upload = SimpleUploadedFile("big.csv", f"event_id,event_time,value\n{rows}".encode())
    batches = IngestBatch.objects.count()

    response = client.post("/events/upload/", {"file": upload})

    assert response.status_code == 200
    assert b"larger than 2,048 bytes" in response.content
    assert IngestBatch.objects.count() == batches
