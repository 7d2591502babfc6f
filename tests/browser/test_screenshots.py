"""Screenshots of the pages from demo data, taken by a real browser. Written to
SNAPAGG_SCREENSHOTS_DIR when set (`make screenshots` sets docs/screenshots), else to a
temporary folder; either way the test checks each one shows what it should."""

from __future__ import annotations

import importlib
import os
import struct
from pathlib import Path

import pytest
from django.apps import apps
from django_celery_beat.models import PeriodicTask
from playwright.sync_api import Page, expect

from aggregation.models import DayTotal
from snapshots.management.commands.demo_setup import demo_history_load
from snapshots.models import Snapshot, SnapshotReason
from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 360, "height": 780}


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture
def shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SNAPAGG_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shoot(page: Page, folder: Path, name: str, width: int) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert _png_size(path)[0] == width


def _schedules_restore() -> None:
    """The schedules the migrations create (a transactional test starts from a flushed
    database): run the migrations' own functions again."""
    for module in (
        "events.migrations.0002_sweeper_schedule",
        "snapshots.migrations.0003_snapshot_schedule",
        "aggregation.migrations.0004_reconcile_schedule",
        "web.migrations.0002_alert_checks_schedule",
        "archive.migrations.0002_archive_schedule",
    ):
        importlib.import_module(module).create_schedule(apps, None)
    importlib.import_module("snapshots.migrations.0005_reconcile_task_moved").rename(apps, None)


def _story_day() -> DayTotal:
    """The demo day that tells the most: restated if one is, else the most late events."""
    return (
        DayTotal.objects.select_related("metric")
        .filter(metric__name="orders")
        .order_by("-restated", "-late_event_count", "-day")
        .first()
    )


def test_screenshots_of_the_pages_from_demo_data(
    page, live_server, operator, celery_worker_process, shots_dir, tmp_path
):
    _schedules_restore()
    with open(os.devnull, "w") as quiet:
        demo_history_load(
            days=30, seed=7, log_path=tmp_path / "demo.csv", stdout=quiet, stderr=quiet
        )
    day = _story_day()
    late = Snapshot.objects.filter(day_total=day, reason=SnapshotReason.LATE_DATA).first()
    page.set_viewport_size(WIDE)
    log_in(page, live_server, "operator")

    expect(page.locator("table.data tbody tr").first).to_be_visible()
    expect(page.locator(".badge-final").first).to_be_visible()
    _shoot(page, shots_dir, "dashboard", WIDE["width"])

    page.goto(f"{live_server.url}{day.get_absolute_url()}")
    expect(page.locator("svg.point").first).to_be_visible()
    expect(page.locator(".headline .sentence")).not_to_be_empty()
    _shoot(page, shots_dir, "day", WIDE["width"])

    if late is not None:
        page.goto(f"{live_server.url}{late.get_absolute_url()}")
        expect(page.locator("table.sums tfoot")).to_contain_text("✓ equals the change")
        _shoot(page, shots_dir, "what-changed", WIDE["width"])

    page.goto(f"{live_server.url}/operations/")
    expect(page.locator("#workers-heading + p")).to_contain_text("1 worker answering")
    schedules = PeriodicTask.objects.count()  # snapshots, sweeper, reconcile, alerts, archive
    expect(page.get_by_role("link", name="Edit in the admin")).to_have_count(schedules)
    expect(page.locator("#reconcile-heading + p")).to_contain_text("No drift")
    _shoot(page, shots_dir, "operations", WIDE["width"])

    page.set_viewport_size(NARROW)
    page.goto(f"{live_server.url}{day.get_absolute_url()}")
    expect(page.locator(".headline .value")).to_be_visible()
    _shoot(page, shots_dir, "day-360", NARROW["width"])
