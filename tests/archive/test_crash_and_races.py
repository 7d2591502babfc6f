"""A crash between the steps of the archive job loses and duplicates nothing; a too-late
event arriving while its day is archived is kept for the next run."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
import pytest

import archive.services as archive_services
from aggregation.models import DayTotal
from archive.models import ArchiveManifest, ArchiveRun, ManifestState
from archive.selectors import event_sums_with_archive
from archive.services import ARCHIVE_LOCK, archive_run_execute
from common.db import advisory_lock_key
from events.models import ArchivedEvent, Event
from snapshots.services.reconcile import reconcile_execute
from tests.archive.conftest import ARCHIVE_AT, DAY, DAY_START
from tests.conftest import event, test_database_url

pytestmark = [pytest.mark.django_db]


class Crash(BaseException):
    """Stands for the process dying: nothing catches it, no cleanup code runs after it."""


def run(at: dt.datetime = ARCHIVE_AT) -> ArchiveRun:
    return archive_run_execute(now=at, trigger="command")


def nothing_lost_or_twice(expected: int) -> None:
    stored = set(Event.objects.filter(day=DAY).values_list("event_id", flat=True))
    archived = set(ArchivedEvent.objects.values_list("event_id", flat=True))
    assert not stored & archived
    assert len(stored | archived) == expected
    day_total = DayTotal.objects.get(day=DAY, metric__is_default=True)
    sums = event_sums_with_archive(DayTotal.objects.filter(pk=day_total.pk))[day_total.pk]
    assert (sums.value, sums.count) == (day_total.value, day_total.event_count)


@pytest.mark.parametrize("step", ["written", "verified", "deleted"])
def test_crash_after_each_step_then_rerun(archived_day, api_client, monkeypatch, step) -> None:
    before = api_client.get("/api/days/default/2026-11-20/snapshots/1/events/").content

    def crash(done: str, day_total: DayTotal) -> None:
        if done == step:
            raise Crash(step)

    monkeypatch.setattr(archive_services, "after_step", crash)
    with pytest.raises(Crash):
        run()
    nothing_lost_or_twice(8)
    manifest = ArchiveManifest.objects.get()
    expected_state = {
        "written": ManifestState.WRITTEN,
        "verified": ManifestState.VERIFIED,
        "deleted": ManifestState.ARCHIVED,
    }[step]
    assert manifest.state == expected_state
    # The crashed run says so: it never finished.
    assert ArchiveRun.objects.get().finished_at is None
    assert api_client.get("/api/days/default/2026-11-20/snapshots/1/events/").content == before

    monkeypatch.setattr(archive_services, "after_step", lambda done, day_total: None)
    rerun = run(at=ARCHIVE_AT + dt.timedelta(hours=1))
    assert rerun.outcome == "succeeded"
    nothing_lost_or_twice(8)
    assert not Event.objects.filter(day=DAY).exists()
    assert ArchiveManifest.objects.get().state == ManifestState.ARCHIVED  # one file, reused
    assert api_client.get("/api/days/default/2026-11-20/snapshots/1/events/").content == before
    assert reconcile_execute(now=ARCHIVE_AT, trigger="command").drift_count == 0


def test_too_late_event_during_archival_waits_for_the_next_run(
    archived_day, pipeline, api_client, monkeypatch
) -> None:
    """A too-late event is ingested and applied between verification and deletion: the
    archived file holds exactly the events it verified; the newcomer stays in the database,
    is snapshotted as a restatement, and is archived by a later run."""
    arrived = ARCHIVE_AT + dt.timedelta(minutes=1)

    def too_late_arrives(done: str, day_total: DayTotal) -> None:
        if done == "verified":
            pipeline.post([event("straggler", DAY_START + dt.timedelta(hours=2), "4")], arrived)

    monkeypatch.setattr(archive_services, "after_step", too_late_arrives)
    first = run()
    assert first.events == 8
    assert list(Event.objects.filter(day=DAY).values_list("event_id", flat=True)) == ["straggler"]
    nothing_lost_or_twice(9)
    monkeypatch.setattr(archive_services, "after_step", lambda done, day_total: None)
    # Not snapshotted yet: the next run leaves the day alone.
    assert run(at=arrived + dt.timedelta(minutes=1)).days == 0
    pipeline.snapshot(arrived + dt.timedelta(minutes=2))
    day = api_client.get("/api/days/default/2026-11-20/").json()
    newest = day["snapshots"][-1]
    assert Decimal(newest["change"]) == Decimal(4)
    url = f"/api/days/default/2026-11-20/snapshots/{newest['sequence']}/events/"
    explained_before = api_client.get(url).content
    assert b"straggler" in explained_before
    later = run(at=arrived + dt.timedelta(minutes=3))
    assert later.events == 1
    assert ArchiveManifest.objects.filter(state=ManifestState.ARCHIVED).count() == 2
    nothing_lost_or_twice(9)
    assert api_client.get(url).content == explained_before
    assert pipeline.total(DAY).value == Decimal(day["value"])
    assert reconcile_execute(now=arrived, trigger="command").drift_count == 0


def test_api_runs_the_job_and_409_while_locked(archived_day, operator_client, api_client):
    with psycopg.connect(test_database_url(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [advisory_lock_key(ARCHIVE_LOCK)])
        busy = operator_client.post("/api/archive/run/")
        assert busy.status_code == 409
        assert busy.json()["error"] == "archive_run_in_progress"
        other.execute("SELECT pg_advisory_unlock(%s)", [advisory_lock_key(ARCHIVE_LOCK)])
    assert api_client.post("/api/archive/run/").status_code == 403
    response = operator_client.post("/api/archive/run/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"run_id", "events_archived", "files_written", "started_at", "finished_at"}
    # The API runs as of the real clock, long after the fixture's 2026 day.
    assert body["events_archived"] == 8
    assert body["files_written"] == 1
