"""Every page through axe-core (from npm, injected by Playwright), at desktop and phone
widths: no violation at all. And at 390 px nothing is wider than the screen and the
stacked table cards do not overlap."""

from __future__ import annotations

import datetime as dt

import pytest

from events.models import IngestBatch, IngestChannel
from events.services.apply import batch_apply
from events.services.ingest import events_ingest
from snapshots.models import RunTrigger
from snapshots.services.run import snapshot_run_execute
from tests.browser.conftest import axe_violations, log_in
from tests.conftest import T0, event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = T0.date().isoformat()
DAY_END = dt.datetime.combine(T0.date() + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
WIDTHS = {"desktop": 1280, "phone": 390}


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


def _pages(batch_id: int) -> list[str]:
    return [
        "/",
        f"/days/default/{DAY}/",
        f"/days/default/{DAY}/snapshots/2/",
        f"/days/default/{DAY}/snapshots/3/",
        "/events/new/",
        "/events/upload/",
        f"/events/batches/{batch_id}/",
        "/operations/",
    ]


@pytest.mark.parametrize("width", list(WIDTHS.values()), ids=list(WIDTHS))
def test_every_page_has_no_axe_violation(page, live_server, axe_js, day_with_history, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    found = {"/accounts/login/": axe_violations(page, axe_js)}
    log_in(page, live_server, "operator")
    for path in _pages(day_with_history):
        page.goto(f"{live_server.url}{path}")
        found[path] = axe_violations(page, axe_js)
    page.goto(f"{live_server.url}/events/new/")
    page.get_by_label("Value").fill("1")
    page.get_by_label("When it happened").fill(T0.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Post the event").click()
    page.wait_for_url("**/events/results/**")
    found["result page"] = axe_violations(page, axe_js)

    assert {path: violations for path, violations in found.items() if violations} == {}


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
