"""What people do, in a real browser: post an event through the form and follow it until a
snapshot explains it; upload a CSV with a bad line; be sent to log in."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from events.models import IngestChannel
from events.services.apply import batch_apply
from events.services.ingest import events_ingest
from snapshots.models import RunTrigger
from snapshots.services.run import snapshot_run_execute
from tests.browser.conftest import log_in
from tests.conftest import event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _published_day(now: dt.datetime) -> str:
    """A day with one snapshot already, as the reader saw it before the new event."""
    seed_time = now - dt.timedelta(minutes=2)
    result = events_ingest(
        raw_events=[event("seed", seed_time, "100")],
        received_at=seed_time,
        channel=IngestChannel.API,
        enqueue=False,
    )
    batch_apply(batch_id=result.batch_id, now=seed_time)
    snapshot_run_execute(now=now - dt.timedelta(minutes=1), trigger=RunTrigger.MANUAL)
    return seed_time.date().isoformat()


@pytest.mark.redis
def test_event_posted_in_the_form_is_applied_snapshotted_and_explained(
    page, live_server, operator, celery_worker_process
):
    now = timezone.now()
    day = _published_day(now)
    log_in(page, live_server, "operator")
    expect(page.get_by_role("heading", name="Daily totals: default")).to_be_visible()

    page.get_by_role("link", name="Post an event").click()
    page.get_by_label("Event id").fill("browser-1")
    page.get_by_label("When it happened").fill(
        (now - dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S")
    )
    page.get_by_label("Value").fill("42.50")
    page.get_by_label("Source").fill("web")
    page.get_by_role("button", name="Post the event").click()
    expect(page.locator("dl.counts")).to_contain_text("Accepted1")

    # The batch page reloads itself until the real worker has applied the batch.
    page.get_by_role("link", name=re.compile(r"Follow batch \d+")).click()
    expect(page.get_by_text("Added to the totals at")).to_be_visible(timeout=60_000)

    page.get_by_role("link", name="Operations").click()
    expect(page.locator("#workers-heading + p")).to_contain_text("1 worker answering")
    expect(page.locator("#workers-heading + p")).to_contain_text("Celery ping")
    page.get_by_role("button", name="Run a snapshot now").click()
    expect(page.locator(".messages")).to_contain_text("1 day snapshotted")

    page.goto(f"{live_server.url}/days/default/{day}/")
    expect(page.locator(".headline .value")).to_have_text("142.50")
    newest = page.locator("#history-heading ~ .table-container tbody tr").first
    expect(newest.locator(".change.up")).to_contain_text("+42.50")
    expect(newest).to_contain_text("Changed by +42.50 because 1")

    newest.get_by_role("link", name="What changed (1)").click()
    expect(page.get_by_role("heading", name="What changed in snapshot 2")).to_be_visible()
    expect(page.locator("table.data tbody").last).to_contain_text("browser-1")
    expect(page.locator("table.sums tfoot")).to_contain_text("✓ equals the change of +42.50")


def test_csv_upload_with_one_bad_line_keeps_the_others_and_names_it(page, live_server, operator):
    log_in(page, live_server, "operator", next_path="/events/upload/")
    csv_text = (
        "event_id,event_time,value,source\n"
        "csv-1,2026-11-20T09:00:00Z,5,web\n"
        "csv-2,2026-11-20T09:30:00Z,five,web\n"
        "csv-3,2026-11-20T10:00:00Z,7.25,mobile\n"
    )

    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "events.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}]
    )
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("dl.counts")).to_contain_text("Accepted2")
    expect(page.locator("dl.counts")).to_contain_text("Rejected1")
    bad = page.locator("table.errors tbody tr")
    expect(bad).to_have_count(1)
    expect(bad).to_contain_text("3")
    expect(bad).to_contain_text("csv-2")
    expect(bad).to_contain_text("value is not a decimal number.")
    expect(page.get_by_role("link", name="default on Fri 20 Nov 2026")).to_be_visible()


def test_anonymous_visitor_is_sent_to_log_in_and_then_to_the_page(page, live_server, operator):
    page.goto(f"{live_server.url}/operations/")

    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/operations/"))
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
