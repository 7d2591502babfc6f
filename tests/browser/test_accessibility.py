"""Every page through axe-core (from npm, injected by Playwright), at desktop and phone
widths, in its states worth a look (forms with errors, results, messages, 403 and 404):
no violation at all; a page route the test does not open fails it too. And at 390 px
nothing is wider than the screen and the stacked table cards do not overlap."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest
from django.urls import resolve

from aggregation.models import Metric
from alerts.models import AlertKind
from alerts.services.raising import alert_raise
from events.models import IngestBatch, IngestChannel
from events.services.apply import batch_apply
from events.services.ingest import events_ingest
from snapagg_project.urls import page_urlpatterns
from snapshots.models import RunTrigger
from snapshots.services.run import snapshot_run_execute
from tests.browser.conftest import axe_violations, log_in
from tests.conftest import T0, event
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = T0.date().isoformat()
DAY_END = dt.datetime.combine(T0.date() + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
WIDTHS = {"desktop": 1280, "phone": 390}
AS_OF = (DAY_END + dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M")
RANGE = (
    f"period=custom&day_from={T0.date() - dt.timedelta(days=4)}"
    f"&day_to={T0.date() + dt.timedelta(days=2)}"
)
UPLOAD = b"event_id,event_time,value\nu-1,2026-11-20T09:00:00Z,5\nu-2,2026-11-20T09:30:00Z,five\n"


def _post(events: list[dict], at: dt.datetime) -> int:
    result = events_ingest(
        raw_events=events, received_at=at, channel=IngestChannel.API, enqueue=False
    )
    batch_apply(batch_id=result.batch_id, now=at)
    return result.batch_id


@pytest.fixture
def day_with_history(operator) -> int:
    """On time, late and after final, each published by a snapshot."""
    _post([event("a", T0, "1753.18", source="web"), event("b", T0, "5")], at=T0)
    snapshot_run_execute(now=T0 + dt.timedelta(minutes=1), trigger=RunTrigger.MANUAL)
    _post([event("c", T0, "2809.46")], at=DAY_END + dt.timedelta(hours=2))
    snapshot_run_execute(now=DAY_END + dt.timedelta(hours=3), trigger=RunTrigger.MANUAL)
    batch = _post(
        [event("d", T0, "127.99", arrival_time=DAY_END + dt.timedelta(days=1, hours=1))],
        at=DAY_END + dt.timedelta(days=1, hours=2),
    )
    snapshot_run_execute(now=DAY_END + dt.timedelta(days=1, hours=3), trigger=RunTrigger.MANUAL)
    return batch


@pytest.fixture
def alert(day_with_history) -> None:
    alert_raise(
        kind=AlertKind.RESTATEMENT,
        detail=f"default {DAY} changed by +127.99 after it was final.",
        now=DAY_END + dt.timedelta(days=1, hours=3),
        metric_id=Metric.objects.get(name="default").pk,
        day=T0.date(),
        sequence=3,
    )


def _pages(batch_id: int) -> list[str]:
    """Every page an operator opens with GET, in each of its states worth a look."""
    return [
        "/",
        "/?metric=default&day_from=2026-11-01&day_to=2026-11-30",
        f"/days/default/{DAY}/",
        f"/days/default/{DAY}/?as_of={AS_OF}",
        f"/days/default/{DAY}/snapshots/1/",
        f"/days/default/{DAY}/snapshots/2/",
        f"/days/default/{DAY}/snapshots/3/",
        f"/periods/?{RANGE}&group_by=day",
        f"/periods/?{RANGE}&group_by=week&source=web&as_of={AS_OF}",
        "/periods/?period=custom&day_from=2026-11-30&day_to=2026-11-01",  # an error shown
        "/periods/",
        f"/sources/?{RANGE}",
        "/sources/",
        "/events/new/",
        "/events/upload/",
        f"/events/batches/{batch_id}/",
        "/operations/",
        "/alerts/",
        "/days/default/1999-01-01/",  # the 404 page
        "/api/docs/",
        "/api/redoc/",
    ]


# The two API pages are drawn by Swagger UI and Redoc, whose markup we do not write. Our
# templates fix what a page can (language, landmarks, colours: templates/api/); these rules
# fail inside the vendors' own components and are let through on those pages only.
VENDOR_MARKUP = {
    # Each operation's summary is a <button> with focusable elements inside it; a tag's
    # <h3> skips a level after the heading before it; the title block sits outside
    # Swagger's own <main> (wrapping it in another landmark would nest <main>).
    "/api/docs/": {"nested-interactive", "heading-order", "region"},
    # Each operation's "Authorizations:" is an <h5> under its <h2>.
    "/api/redoc/": {"heading-order"},
}


def _settled(page) -> None:
    """Wait for the pages drawn by script (Swagger UI, Redoc) to have drawn the schema."""
    if "/api/docs/" in page.url:
        page.locator(".opblock-summary-path").first.wait_for()
    elif "/api/redoc/" in page.url:
        page.get_by_role("heading", name="aggregates_retrieve").wait_for(state="attached")


@pytest.mark.parametrize("width", list(WIDTHS.values()), ids=list(WIDTHS))
def test_every_page_has_no_axe_violation(page, live_server, axe_js, day_with_history, alert, width):
    page.set_viewport_size({"width": width, "height": 900})
    found: dict[str, list] = {}
    opened: list[str] = []

    def check(name: str) -> None:
        _settled(page)
        opened.append(urlsplit(page.url).path)
        allowed = VENDOR_MARKUP.get(urlsplit(page.url).path, set())
        found[name] = [v for v in axe_violations(page, axe_js) if v["id"] not in allowed]

    page.goto(f"{live_server.url}/accounts/login/")
    check("/accounts/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    check("login refused")

    log_in(page, live_server, "operator")
    for path in _pages(day_with_history):
        page.goto(f"{live_server.url}{path}")
        check(path)

    page.goto(f"{live_server.url}/events/new/")
    page.get_by_role("button", name="Post the event").click()
    check("event form with errors")
    page.get_by_label("Value").fill("1")
    page.get_by_label("When it happened").fill(T0.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Post the event").click()
    page.wait_for_url("**/events/results/**")
    check("event result")

    page.goto(f"{live_server.url}/events/upload/")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "events.csv", "mimeType": "text/csv", "buffer": UPLOAD}]
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/events/results/**")
    check("upload result with a bad line")

    page.goto(f"{live_server.url}/operations/")
    page.get_by_label("Take a snapshot every").fill("0")
    page.get_by_role("button", name="Save").click()
    check("operations after a refused interval")
    page.get_by_label("Take a snapshot every").fill("5")
    page.get_by_role("button", name="Save").click()
    check("operations after a saved interval")

    page.context.clear_cookies()
    UserFactory(username="no-rights")
    log_in(page, live_server, "no-rights")
    page.get_by_role("heading", name="Not allowed").wait_for()
    check("the 403 page")

    failing = {name: violations for name, violations in found.items() if violations}
    assert failing == {}, json.dumps(failing, indent=1)  # every violation, untruncated
    assert _not_opened(opened) == set()


# Page routes with no page of their own: each answers a form's POST with a redirect to a
# page opened above (logout to the login page).
POST_ONLY = {"operations-snapshot-run", "operations-interval", "operations-requeue", "logout"}


def _not_opened(paths: list[str]) -> set[str]:
    """The page routes, and the API's two HTML pages, that the test did not open: a new
    page fails the test until it is added to it."""
    names = {pattern.name for pattern in page_urlpatterns} | {"api-docs", "api-redoc"}
    return names - POST_ONLY - {resolve(path).url_name for path in paths}


def _wider_than_the_screen(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('main *')]
              .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
              .filter(el => !el.closest('.table-container'))
              .map(el => el.tagName + '.' + el.className)"""
    )


def _overlapping_cells(page) -> int:
    return page.evaluate(
        """() => {
          let overlaps = 0;
          for (const row of document.querySelectorAll('table.stack tbody tr')) {
            const boxes = [...row.children].map(td => td.getBoundingClientRect());
            for (let i = 1; i < boxes.length; i++) {
              if (boxes[i].top < boxes[i - 1].bottom - 0.5) overlaps++;
            }
          }
          return overlaps;
        }"""
    )


def test_phone_width_pages_fit_and_cards_do_not_overlap(page, live_server, day_with_history):
    page.set_viewport_size({"width": 390, "height": 900})
    log_in(page, live_server, "operator")
    for path in ["/", f"/days/default/{DAY}/", f"/days/default/{DAY}/snapshots/3/"]:
        page.goto(f"{live_server.url}{path}")

        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        assert _wider_than_the_screen(page) == [], path
        assert _overlapping_cells(page) == 0, path


def test_the_batch_page_reload_pauses_and_stops_once_published(page, live_server, day_with_history):
    waiting = events_ingest(
        raw_events=[event("w", T0, "1")],
        received_at=DAY_END + dt.timedelta(days=2),
        channel=IngestChannel.API,
        enqueue=False,
    ).batch_id
    log_in(page, live_server, "operator")

    page.goto(f"{live_server.url}/events/batches/{waiting}/")
    assert page.locator('meta[http-equiv="refresh"]').count() == 1
    page.get_by_role("link", name="Pause reloading").click()
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    page.get_by_role("link", name="Resume reloading").click()
    assert page.locator('meta[http-equiv="refresh"]').count() == 1

    page.goto(f"{live_server.url}/events/batches/{day_with_history}/")
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    assert page.get_by_role("link", name="snapshot #3").count() == 1
    assert IngestBatch.objects.filter(pk=waiting).exists()
