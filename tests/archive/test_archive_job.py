"""The archive job: what it moves, that readers see nothing change, and dedup forever."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from aggregation.models import DayTotal, Metric
from archive.models import ArchiveManifest, ArchiveRun, ManifestState
from archive.services import archive_run_execute
from events.models import ArchivedEvent, Conflict, Event
from snapshots.models import Snapshot
from snapshots.services.reconcile import reconcile_execute
from tests.archive.conftest import ARCHIVE_AT, DAY, DAY_START, day_events
from tests.conftest import event
from tests.factories import MetricFactory

pytestmark = [pytest.mark.django_db]


def run(at: dt.datetime = ARCHIVE_AT, **kwargs: Any) -> ArchiveRun:
    return archive_run_execute(now=at, trigger="command", **kwargs)


def reader_view(client, day: dt.date = DAY, metric: str = "default") -> dict[str, Any]:
    """Everything a reader sees of a day, as the API answers it."""
    base = f"/api/days/{metric}/{day.isoformat()}/"
    view = {"day": client.get(base).json()}
    for snapshot in view["day"]["snapshots"]:
        sequence = snapshot["sequence"]
        url = f"{base}snapshots/{sequence}/events/"
        view[f"events{sequence}"] = client.get(url).content
        view[f"events{sequence}-page2"] = client.get(url, {"page_size": 2, "page": 2}).content
        taken = snapshot["taken_at"]
        view[f"as_of{sequence}"] = client.get(base, {"as_of": taken}).json()
    view["days"] = client.get("/api/days/", {"metric": metric}).json()
    return view


def test_archives_the_day_and_readers_see_nothing_change(archived_day, api_client) -> None:
    before = reader_view(api_client)
    assert len(before["day"]["snapshots"]) == 4

    archive = run()

    assert archive.outcome == "succeeded"
    assert (archive.days, archive.events, archive.files_written) == (1, 8, 1)
    assert not Event.objects.filter(day=DAY).exists()
    assert ArchivedEvent.objects.count() == 8
    assert reader_view(api_client) == before


def test_file_holds_every_field_and_its_snapshot(archived_day, archive_dir: Path) -> None:
    run()
    manifest = ArchiveManifest.objects.get()
    assert manifest.state == ManifestState.ARCHIVED
    assert manifest.event_count == 8
    path = archive_dir / manifest.location
    lines = [json.loads(x) for x in gzip.decompress(path.read_bytes()).decode().splitlines()]
    first = next(x for x in lines if x["event_id"] == "e1")
    assert first["value"] == "1.250000"
    assert first["source"] == "s1"
    assert first["snapshot_sequence"] == 1
    assert {x["snapshot_sequence"] for x in lines} == {1, 2, 4}
    assert sorted(manifest.snapshot_sequences) == [1, 2, 4]


def test_event_detail_answers_for_archived_events(archived_day, api_client) -> None:
    before = api_client.get("/api/events/late1/").json()
    assert before["archived"] is False
    run()
    after = api_client.get("/api/events/late1/").json()
    assert after.pop("archived") is True
    before.pop("archived")
    assert after == before
    assert after["late"] is True
    assert api_client.get("/api/events/never-sent/").status_code == 404


def test_resend_after_archival_is_duplicate_or_conflict(archived_day, pipeline) -> None:
    run()
    total = pipeline.total(DAY)
    again = day_events()[0]
    changed = {**day_events()[1], "value": "999"}
    result = pipeline.post([again, changed], at=ARCHIVE_AT + dt.timedelta(hours=1))
    assert (result.accepted, result.duplicates, result.conflicts) == (0, 1, 1)
    conflict = Conflict.objects.get(event_id="e2")
    assert conflict.stored["archived"] == "true"
    assert not Event.objects.filter(event_id__in=["e1", "e2"]).exists()
    pipeline.snapshot(ARCHIVE_AT + dt.timedelta(hours=2))
    refreshed = pipeline.total(DAY)
    assert (refreshed.value, refreshed.event_count) == (total.value, total.event_count)


def test_resend_with_other_arrival_time_is_a_duplicate(archived_day, pipeline) -> None:
    run()
    again = {**day_events()[2], "arrival_time": (ARCHIVE_AT).isoformat()}
    result = pipeline.ingest([again], at=ARCHIVE_AT)
    assert (result.accepted, result.duplicates, result.conflicts) == (0, 1, 0)


def test_only_eligible_days_are_archived(kept_metric, pipeline) -> None:
    Metric.objects.filter(pk=kept_metric.pk).update(raw_retention_days=3)
    forever = MetricFactory(name="forever", raw_retention_days=None)
    pipeline.post(day_events(), at=DAY_START + dt.timedelta(hours=10))
    pipeline.post(
        [event("f1", DAY_START, "1", metric=forever.name)], at=DAY_START + dt.timedelta(hours=10)
    )
    # Unsnapshotted: nothing may go.
    assert run().days == 0
    pipeline.snapshot(DAY_START + dt.timedelta(hours=11))
    # Snapshotted but not final yet (final at 11-22 00:00), nor past retention (11-24).
    assert run(at=DAY_START + dt.timedelta(hours=47)).days == 0
    pipeline.snapshot(DAY_START + dt.timedelta(hours=49))
    assert run(at=DAY_START + dt.timedelta(hours=95)).days == 0  # retention not over
    assert run(at=DAY_START + dt.timedelta(hours=97)).days == 1
    assert Event.objects.filter(metric=forever).count() == 1


def test_unapplied_events_keep_the_day(archived_day, pipeline) -> None:
    too_late = [event("pending", DAY_START + dt.timedelta(hours=1), "2")]
    pipeline.ingest(too_late, at=ARCHIVE_AT - dt.timedelta(hours=1))  # not applied yet
    archive = run()
    assert archive.days == 0
    assert Event.objects.filter(day=DAY).count() == 9


def test_rerun_is_idempotent(archived_day) -> None:
    run()
    second = run(at=ARCHIVE_AT + dt.timedelta(days=1))
    assert (second.days, second.events) == (0, 0)
    assert ArchiveManifest.objects.count() == 1


def test_dry_run_changes_nothing(archived_day, archive_dir: Path) -> None:
    out = StringIO()
    call_command("archive", "--dry-run", stdout=out)
    assert "would archive default 2026-11-20: 8 events" in out.getvalue()
    assert Event.objects.filter(day=DAY).count() == 8
    assert not ArchiveManifest.objects.exists()
    assert not archive_dir.exists() or not any(archive_dir.rglob("*.gz"))


def test_command_archives_one_metric(archived_day) -> None:
    other = MetricFactory(name="other")
    out = StringIO()
    call_command("archive", "--metric", other.name, stdout=out)
    assert Event.objects.filter(day=DAY).count() == 8
    call_command("archive", "--metric", "default", stdout=out)
    assert not Event.objects.filter(day=DAY).exists()
    assert "archived 8 events of 1 days" in out.getvalue()


def test_reconcile_counts_archived_days_and_deep_rereads(archived_day, archive_dir) -> None:
    run()
    result = reconcile_execute(now=ARCHIVE_AT, trigger="command")
    assert result.drift_count == 0, result.drift
    out = StringIO()
    call_command("reconcile", "--deep", stdout=out)
    assert "1 re-read, all match" in out.getvalue()
    manifest = ArchiveManifest.objects.get()
    (archive_dir / manifest.location).write_bytes(gzip.compress(b"{}\n"))
    from archive.selectors import cache_clear

    cache_clear()
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 archive files are wrong"):
        call_command("reconcile", "--deep", stdout=out)
    assert "checksum differs" in out.getvalue()


def test_restore_round_trip(archived_day, api_client, pipeline) -> None:
    before_events = list(Event.objects.filter(day=DAY).order_by("pk").values())
    before_view = reader_view(api_client)
    run()
    out = StringIO()
    call_command("restore_archive", "--metric", "default", "--day", "2026-11-20", stdout=out)
    assert "Restored 8 events" in out.getvalue()
    assert list(Event.objects.filter(day=DAY).order_by("pk").values()) == before_events
    assert not ArchivedEvent.objects.exists()
    assert ArchiveManifest.objects.get().state == ManifestState.RESTORED
    assert reader_view(api_client) == before_view
    assert api_client.get("/api/events/e1/").json()["archived"] is False
    result = pipeline.ingest(day_events()[:1], at=ARCHIVE_AT)
    assert result.duplicates == 1
    # Archived again by the next run: the same file, the same manifest.
    again = run(at=ARCHIVE_AT + dt.timedelta(days=1))
    assert again.events == 8
    assert ArchiveManifest.objects.get().state == ManifestState.ARCHIVED
    assert reader_view(api_client) == before_view


def test_snapshots_untouched(archived_day) -> None:
    before = list(Snapshot.objects.order_by("pk").values())
    totals = list(DayTotal.objects.order_by("pk").values())
    run()
    assert list(Snapshot.objects.order_by("pk").values()) == before
    assert list(DayTotal.objects.order_by("pk").values()) == totals


def test_run_is_logged(archived_day) -> None:
    archive = run()
    archive.refresh_from_db()
    assert archive.finished_at == ARCHIVE_AT
    assert archive.bytes == ArchiveManifest.objects.get().bytes > 0
    assert Metric.objects.get(is_default=True).raw_retention_days == 1


def test_operations_page_and_admin_show_archive_runs(archived_day, client) -> None:
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    assert "No archive run yet" in client.get("/operations/").content.decode()
    archive = run()
    html = client.get("/operations/").content.decode()
    assert "Raw event archive" in html
    assert "Succeeded" in html
    admin = client.get(f"/admin/archive/archiverun/{archive.pk}/change/")
    assert admin.status_code == 200
    assert client.get("/admin/archive/archivemanifest/").status_code == 200
    assert client.get("/admin/archive/archiverun/add/").status_code == 403
