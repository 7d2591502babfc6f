"""Who sees what: anonymous -> login; outsider -> 403 everywhere; viewer reads but cannot
post or operate; operator (staff) does everything. Every form carries a CSRF token."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from common.access import READ_PERMISSIONS, VIEWER_GROUP
from events.models import Event, IngestBatch
from snapshots.models import SnapshotRun
from tests.pages.conftest import DAY, DAY_URL

pytestmark = pytest.mark.django_db

READ_PAGES = ["/", DAY_URL, f"{DAY_URL}snapshots/2/"]
STAFF_PAGES = ["/events/new/", "/events/upload/", "/operations/", "/events/batches/{batch}/"]
FORM_POST = {
    "event_id": "posted-by-someone",
    "metric": "default",
    "event_time": f"{DAY.isoformat()}T10:00:00",
    "value": "4",
}
POSTS = ["/events/new/", "/events/upload/", "/operations/snapshot-run/", "/operations/requeue/"]


@pytest.fixture
def pages(history) -> dict[str, list[str]]:
    batch = IngestBatch.objects.order_by("pk").first().pk
    return {
        "read": READ_PAGES,
        "staff": [page.format(batch=batch) for page in STAFF_PAGES],
    }


def _nothing_written(counts_before: tuple[int, int, int]) -> bool:
    return counts_before == (
        Event.objects.count(),
        IngestBatch.objects.count(),
        SnapshotRun.objects.count(),
    )


def _counts() -> tuple[int, int, int]:
    return Event.objects.count(), IngestBatch.objects.count(), SnapshotRun.objects.count()


def test_anonymous_visitors_are_sent_to_the_login_page(client, pages):
    for page in pages["read"] + pages["staff"]:
        response = client.get(page)

        assert response.status_code == 302, page
        assert response["Location"].startswith("/accounts/login/?next="), page


def test_anonymous_posts_are_sent_to_login_and_change_nothing(client, pages):
    before = _counts()

    responses = [client.post(url, FORM_POST) for url in POSTS]

    assert all(r.status_code == 302 and "/accounts/login/" in r["Location"] for r in responses)
    assert _nothing_written(before)


def test_outsider_is_refused_every_page_and_told_how_to_get_access(client, outsider, pages):
    client.force_login(outsider)

    for page in pages["read"] + pages["staff"]:
        assert client.get(page).status_code == 403, page
    refused = client.get("/")
    assert "viewer" in refused.content.decode()
    assert "Not allowed" in refused.content.decode()


def test_viewer_reads_the_dashboard_day_and_what_changed_pages(client, viewer, pages):
    client.force_login(viewer)

    for page in pages["read"]:
        assert client.get(page).status_code == 200, page


def test_viewer_cannot_open_staff_pages(client, viewer, pages):
    client.force_login(viewer)

    for page in pages["staff"]:
        assert client.get(page).status_code == 403, page


def test_viewer_cannot_post_events_or_operate(client, viewer, pages):
    client.force_login(viewer)
    before = _counts()

    responses = [client.post(url, FORM_POST) for url in POSTS]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert _nothing_written(before)


def test_viewer_sees_no_links_to_staff_pages(client, viewer, history):
    client.force_login(viewer)

    page = client.get("/").content.decode()

    assert "/events/new/" not in page
    assert "/operations/" not in page


def test_operator_opens_every_page(client, operator, pages):
    client.force_login(operator)

    for page in pages["read"] + pages["staff"]:
        assert client.get(page).status_code == 200, page


def test_posting_without_a_csrf_token_is_refused(operator, history):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    before = _counts()

    responses = [client.post(url, FORM_POST) for url in POSTS]

    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert _nothing_written(before)


def test_every_form_carries_a_csrf_token(client, operator, history):
    client.force_login(operator)

    for page in ["/events/new/", "/events/upload/", "/operations/", "/"]:
        html = client.get(page).content.decode()
        forms_posting = html.count('method="post"')
        assert html.count('name="csrfmiddlewaretoken"') == forms_posting, page


def test_migrate_creates_the_viewer_group_with_the_read_permissions():
    # No fixture recreates it here: this is what the data migration left.
    group = Group.objects.get(name=VIEWER_GROUP)

    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}

    assert held == set(READ_PERMISSIONS)


def test_viewer_group_holds_exactly_the_read_permissions(viewer):
    group = Group.objects.get(name=VIEWER_GROUP)

    held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}

    assert held == set(READ_PERMISSIONS)
    assert not viewer.is_staff


def test_login_form_logs_in_and_goes_on_to_the_page_asked_for(client, viewer, history):
    login = client.get("/accounts/login/?next=" + DAY_URL)
    response = client.post(
        "/accounts/login/",
        {"username": "viewer", "password": "correct horse battery staple", "next": DAY_URL},
    )

    assert 'name="csrfmiddlewaretoken"' in login.content.decode()
    assert response.status_code == 302
    assert response["Location"] == DAY_URL


def test_logout_is_a_post_and_ends_the_session(client, viewer, history):
    client.force_login(viewer)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert client.get("/").status_code == 302
