"""Replay: the same log gives the same snapshots, through the production services."""

from __future__ import annotations

import datetime as dt
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Sum

from aggregation.models import DayTotal
from events.models import BatchStatus, Conflict, Event, IngestBatch, IngestChannel, QuarantinedEvent
from snapshots import replay as replay_module
from snapshots.models import RunTrigger, Snapshot, SnapshotReason, SnapshotRun
from snapshots.selectors.history import snapshot_table_digest
from tests.conftest import PROJECT_ROOT, test_database_url
from tests.snapshots.conftest import DAY0, by_arrival, replay_fresh, story_events, write_log

pytestmark = pytest.mark.django_db
EMPTY_DIGEST = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _digest(lines: list[str]) -> str:
    assert lines[-1].startswith("digest sha256:"), lines
    return lines[-1].removeprefix("digest sha256:")


def test_replaying_the_same_log_twice_gives_the_same_digest(story_log):
    first = _digest(replay_fresh(story_log, interval="2h"))
    second = _digest(replay_fresh(story_log, interval="2h"))

    assert first == second
    assert len(first) == 64
    assert first != EMPTY_DIGEST


def test_a_different_interval_gives_a_different_digest_again_stable(story_log):
    two_hours = _digest(replay_fresh(story_log, interval="2h"))
    five_hours = _digest(replay_fresh(story_log, interval="5h"))

    assert five_hours != two_hours
    assert _digest(replay_fresh(story_log, interval="5h")) == five_hours


def test_a_log_not_in_arrival_order_is_replayed_in_arrival_order(tmp_path, held_metric):
    events = by_arrival(story_events())
    shuffled = random.Random(5).sample(events, len(events))
    in_order = write_log(tmp_path / "in-order.csv", events)
    out_of_order = write_log(tmp_path / "shuffled.csv", shuffled)

    assert _digest(replay_fresh(out_of_order, interval="2h")) == _digest(
        replay_fresh(in_order, interval="2h")
    )


def _final_totals_after_replay(path, **options) -> dict:
    totals = {}

    def collect() -> None:
        for row in DayTotal.objects.values("metric__name", "day", "value", "event_count"):
            totals[(row["metric__name"], row["day"])] = (row["value"], row["event_count"])

    replay_fresh(path, collect=collect, **options)
    return totals


def test_events_arriving_in_shuffled_order_give_the_same_final_totals(tmp_path, db):
    rng = random.Random(11)
    events = [{**e, "metric": ""} for e in story_events(per_day=30)[:-2]]  # restate policy
    on_time = [{**e, "arrival_time": e["event_time"] + dt.timedelta(seconds=1)} for e in events]
    shuffled = [
        {**e, "arrival_time": e["event_time"] + dt.timedelta(seconds=rng.randrange(72_000))}
        for e in events
    ]
    assert [e["event_id"] for e in by_arrival(shuffled)] != [
        e["event_id"] for e in by_arrival(on_time)
    ]

    in_order = _final_totals_after_replay(
        write_log(tmp_path / "a.csv", by_arrival(on_time)), interval="1h"
    )
    out_of_order = _final_totals_after_replay(
        write_log(tmp_path / "b.csv", by_arrival(shuffled)), interval="1h"
    )

    assert out_of_order == in_order
    assert sum(value for value, _ in in_order.values()) == sum(Decimal(e["value"]) for e in events)


def test_replay_goes_through_ingest_apply_and_the_snapshot_job(story_log):
    out = StringIO()
    call_command("replay", str(story_log), interval="2h", stdout=out)

    batches = IngestBatch.objects.all()
    assert set(batches.values_list("channel", flat=True)) == {IngestChannel.REPLAY}
    assert not batches.filter(status=BatchStatus.RECEIVED).exists()
    assert Event.objects.count() == 120
    assert Conflict.objects.count() == 1
    assert QuarantinedEvent.objects.exists()
    reasons = set(Snapshot.objects.values_list("reason", flat=True))
    assert {SnapshotReason.FIRST, SnapshotReason.LATE_DATA, SnapshotReason.RESTATEMENT} <= reasons
    assert set(SnapshotRun.objects.values_list("trigger", flat=True)) == {RunTrigger.REPLAY}
    for taken_at in Snapshot.objects.values_list("taken_at", flat=True):
        assert taken_at.timestamp() % 7200 == 0  # every run is at a boundary
    late = DayTotal.objects.aggregate(late=Sum("late_event_count"))["late"]
    report = out.getvalue()
    assert f"late                     {late:>10,}" in report
    assert f"snapshots written        {Snapshot.objects.count():>10,}" in report
    assert report.strip().splitlines()[-1] == f"digest sha256:{snapshot_table_digest()}"


def test_replay_cuts_ingest_batches_at_boundaries_and_at_the_group_size(tmp_path, db, monkeypatch):
    monkeypatch.setattr(replay_module, "INGEST_GROUP_MAX", 4)
    start = dt.datetime.combine(DAY0, dt.time(10), tzinfo=dt.UTC)
    events = [
        {"event_id": f"e{n}", "event_time": start, "value": "1", "arrival_time": start}
        for n in range(13)
    ]
    for n, event in enumerate(events):
        event["arrival_time"] = start + dt.timedelta(minutes=5 * n if n < 10 else 70 + n)
    log = write_log(tmp_path / "groups.jsonl", events)

    call_command("replay", str(log), interval="1h", stdout=StringIO())

    sizes = list(IngestBatch.objects.order_by("pk").values_list("accepted_count", flat=True))
    assert sizes == [4, 4, 2, 3]
    assert list(Snapshot.objects.values_list("value", flat=True)) == [Decimal(10), Decimal(13)]


def test_replay_refuses_a_database_that_already_has_events(story_log, pipeline):
    pipeline.post(
        [{"event_id": "x", "event_time": "2026-11-02T10:00:00Z", "value": "1"}],
        at=dt.datetime(2026, 11, 2, 11, tzinfo=dt.UTC),
    )

    with pytest.raises(CommandError, match="already has events"):
        call_command("replay", str(story_log), stdout=StringIO())

    assert Event.objects.count() == 1


def test_a_line_without_arrival_time_stops_the_replay_before_anything_is_stored(tmp_path, db):
    log = tmp_path / "broken.csv"
    log.write_text(
        "event_id,event_time,arrival_time,value\n"
        "a,2026-11-02T10:00:00Z,2026-11-02T10:00:01Z,1\n"
        "b,2026-11-02T10:00:00Z,,1\n"
    )

    with pytest.raises(CommandError, match="line 3: arrival_time is required"):
        call_command("replay", str(log), stdout=StringIO())

    assert not Event.objects.exists()


def test_csv_and_json_lines_of_the_same_events_replay_identically(tmp_path, held_metric):
    events = by_arrival(story_events())
    as_csv = write_log(tmp_path / "log.csv", events)
    as_jsonl = write_log(tmp_path / "log.jsonl", events)

    assert _digest(replay_fresh(as_jsonl, interval="3h")) == _digest(
        replay_fresh(as_csv, interval="3h")
    )


def test_metric_and_window_options_select_the_events_replayed(story_log):
    call_command(
        "replay",
        str(story_log),
        metric="held",
        start="2026-11-02T12:00:00Z",
        end="2026-11-03",
        stdout=StringIO(),
    )

    window_end = dt.datetime(2026, 11, 4, tzinfo=dt.UTC)
    events = Event.objects.all()
    assert events.exists()
    assert set(events.values_list("metric__name", flat=True)) == {"held"}
    assert all(
        dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC) <= arrival < window_end
        for arrival in events.values_list("arrival_time", flat=True)
    )
    assert SnapshotRun.objects.order_by("-started_at").first().started_at <= window_end


@pytest.fixture
def fresh_database_url() -> Iterator[str]:
    """An empty database of its own on the same PostgreSQL server, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_replay"[:63]
    url = test_database_url().rsplit("/", 1)[0] + f"/{name}"
    admin = psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_separate_process_on_a_fresh_database_prints_the_same_digest(
    tmp_path, story_log, fresh_database_url
):
    here = _digest(replay_fresh(story_log, interval="2h"))
    script = (
        "import datetime as dt, django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "from aggregation.models import Metric\n"
        "Metric.objects.create(name='held', too_late_policy='quarantine',"
        " allowed_lateness=dt.timedelta(hours=6))\n"
        f"call_command('replay', {str(story_log)!r}, interval='2h')\n"
    )
    env = {
        **os.environ,
        "DATABASE_URL": fresh_database_url,
        "SNAPAGG_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
    }

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )

    assert _digest(result.stdout.strip().splitlines()) == here


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("a.csv", "event_id,event_time,value,colour\n", {}, "unknown column 'colour'"),
        ("b.csv", "event_id,event_time,value\n", {}, "no arrival_time column"),
        (
            "c.csv",
            "event_id,event_time,arrival_time,value\na,2026-11-02T10:00:00Z\n",
            {},
            "line 2: 2 cells, but the header has 4",
        ),
        ("d.jsonl", '{"event_id": "a"\n', {}, "line 1: not valid JSON"),
        ("e.jsonl", "[1, 2]\n", {}, "line 1: each line must be a JSON object"),
        ("f.jsonl", "", {"metric": "nope"}, "Unknown metric 'nope'"),
        ("g.jsonl", "", {"interval": "0m"}, "use a positive duration"),
    ],
)
def test_a_log_that_cannot_be_replayed_is_refused_with_the_reason(
    tmp_path, db, name, content, options, message
):
    log = tmp_path / name
    log.write_text(content)

    with pytest.raises(CommandError, match=message):
        call_command("replay", str(log), stdout=StringIO(), **options)

    assert not Event.objects.exists()
