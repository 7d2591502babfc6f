"""An event resent while its day's deletion is in flight is still a duplicate: the archive
transaction holds new inserts into events_event until its archived ids are committed."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

import archive.services as archive_services
from archive.services import archive_run_execute
from events.models import ArchivedEvent, Event
from tests.archive.conftest import ARCHIVE_AT, DAY, day_events
from tests.conftest import Pipeline, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def _waiting_on_lock(pid_box: dict) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid_box["pid"]]
        )
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def test_resend_during_deletion_is_a_duplicate(archived_day, monkeypatch) -> None:
    original = archive_services.events_archive
    resent: dict = {}
    ingest_pid: dict = {}
    started = threading.Event()

    def resend() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                ingest_pid["pid"] = cursor.fetchone()[0]
            started.set()
            resent["result"] = Pipeline().ingest(day_events()[:1], at=ARCHIVE_AT)
        finally:
            connections.close_all()

    thread = threading.Thread(target=resend)

    def archive_then_let_ingest_queue(**kwargs):
        deleted = original(**kwargs)  # uncommitted: the events are gone, ids not yet visible
        thread.start()
        started.wait(10)
        wait_for(lambda: _waiting_on_lock(ingest_pid), timeout=30, what="ingest to wait")
        return deleted

    monkeypatch.setattr(archive_services, "events_archive", archive_then_let_ingest_queue)
    run = archive_run_execute(now=ARCHIVE_AT, trigger="command")
    thread.join(30)
    assert run.events == 8
    result = resent["result"]
    assert (result.accepted, result.duplicates) == (0, 1)
    assert not Event.objects.filter(day=DAY).exists()
    assert ArchivedEvent.objects.filter(event_id="e1").exists()
