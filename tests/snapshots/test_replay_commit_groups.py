"""Replay's shortcuts (several boundaries per commit without savepoints, statements
prepared, the next final-at looked up only at a boundary without applies) write exactly
the snapshots of the plain path: every service in its own transaction and the lookup after
every run."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from snapshots import replay as replay_module
from snapshots.models import Snapshot, SnapshotRun
from snapshots.selectors.history import snapshot_table_digest
from tests.snapshots.conftest import by_arrival, story_events, write_log

# Real commits: the shortcut being checked is about transactions.
pytestmark = pytest.mark.django_db(transaction=True)

DATA_TABLES = (
    "events_event, aggregation_contribution, events_conflict, events_quarantinedevent, "
    "events_rejectedevent, events_ingestbatch, aggregation_daytotal, snapshots_snapshot, "
    "snapshots_snapshotrun"
)


def _replay(path, interval: str) -> tuple[str, list[tuple]]:
    call_command("replay", str(path), "--interval", interval, stdout=StringIO(), stderr=StringIO())
    runs = list(SnapshotRun.objects.order_by("started_at").values_list("started_at", "trigger"))
    digest = snapshot_table_digest()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {DATA_TABLES} RESTART IDENTITY CASCADE")
    return digest, runs


def _plain_path(monkeypatch) -> None:
    """The path without the shortcuts: no transaction around the boundaries (each service
    call is its own transaction, as in production), no prepared statements, and the next
    final-at read right after every run."""
    monkeypatch.setattr(replay_module._CommitGroups, "open", lambda self: None)
    monkeypatch.setattr(replay_module._CommitGroups, "run_done", lambda self, events: None)
    monkeypatch.setattr(replay_module._CommitGroups, "close", lambda self, error: None)
    monkeypatch.setattr(replay_module, "_statements_prepared", contextlib.nullcontext)
    original_tick = replay_module._Replayer.tick

    def eager_tick(self, boundary):
        original_tick(self, boundary)
        if self.next_final_at is replay_module._UNKNOWN:
            self.next_final_at = replay_module._next_final_at()

    monkeypatch.setattr(replay_module._Replayer, "tick", eager_tick)


@pytest.mark.parametrize("seed", [3, 17])
def test_commit_groups_and_the_lazy_final_lookup_write_the_same_snapshots(
    tmp_path, held_metric, monkeypatch, seed
):
    # A random log with late, too-late, held, duplicate and conflicting events, and hours
    # without arrivals, so that days turn final at boundaries with nothing applied.
    rng = random.Random(seed)
    events = by_arrival(story_events(days=4, per_day=rng.randrange(20, 60), seed=seed))
    log = write_log(tmp_path / "random.csv", events)
    monkeypatch.setattr(replay_module, "COMMIT_EVERY_BOUNDARIES", 7)  # several groups
    monkeypatch.setattr(replay_module, "ANALYZE_FIRST_AT_EVENTS", 20)  # and some ANALYZEs
    analyzed = []
    real_refresh = replay_module._CommitGroups._statistics_refresh
    monkeypatch.setattr(
        replay_module._CommitGroups,
        "_statistics_refresh",
        lambda self, events: analyzed.append(events) or real_refresh(self, events),
    )

    grouped, grouped_runs = _replay(log, "1h")
    assert len(set(analyzed)) > 2  # the statistics were refreshed as the events grew
    _plain_path(monkeypatch)
    plain, plain_runs = _replay(log, "1h")

    assert grouped == plain
    assert grouped_runs == plain_runs
    assert len(plain_runs) > 7  # the log spans several commit groups
    assert Snapshot.objects.count() == 0  # each replay started from an empty database


def test_a_failure_inside_a_commit_group_rolls_back_to_the_last_commit(
    tmp_path, held_metric, monkeypatch
):
    log = write_log(tmp_path / "story.csv", by_arrival(story_events(days=2)))
    monkeypatch.setattr(replay_module, "COMMIT_EVERY_BOUNDARIES", 5)
    runs = []
    original = replay_module.snapshot_run_execute

    def failing_run(*, now: dt.datetime, trigger: str):
        if len(runs) == 12:
            raise RuntimeError("the database went away")
        runs.append(now)
        return original(now=now, trigger=trigger)

    monkeypatch.setattr(replay_module, "snapshot_run_execute", failing_run)

    with pytest.raises(RuntimeError):
        call_command("replay", str(log), "--interval", "1h", stdout=StringIO(), stderr=StringIO())

    # Runs 1-10 were committed in two groups; runs 11 and 12 were rolled back with the
    # events of their group.
    assert SnapshotRun.objects.count() == 10


def test_a_failure_inside_a_service_surfaces_as_itself_and_rolls_back_the_group(
    tmp_path, held_metric, monkeypatch
):
    # Without savepoints the failing service dooms the whole group: its failure records
    # cannot be written there, and must not hide the error behind one about the
    # transaction.
    from snapshots.services import run as run_module

    log = write_log(tmp_path / "story.csv", by_arrival(story_events(days=2)))
    monkeypatch.setattr(replay_module, "COMMIT_EVERY_BOUNDARIES", 5)
    original = run_module._snapshots_take
    calls = []

    def failing_take(now: dt.datetime):
        calls.append(now)
        if len(calls) == 12:
            raise run_module.SnapshotInvariantError("a total disagrees with its ledger")
        return original(now)

    monkeypatch.setattr(run_module, "_snapshots_take", failing_take)

    with pytest.raises(run_module.SnapshotInvariantError):
        call_command("replay", str(log), "--interval", "1h", stdout=StringIO(), stderr=StringIO())

    assert SnapshotRun.objects.count() == 10  # no failed-run record: the group rolled back
    assert connection.features.uses_savepoints  # the connection takes savepoints again
