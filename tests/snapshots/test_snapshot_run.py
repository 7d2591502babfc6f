"""The snapshot job: what it writes, why, once, and never rewrites."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from snapshots.models import (
    ImmutableSnapshotError,
    RunOutcome,
    Snapshot,
    SnapshotReason,
    SnapshotRun,
)
from snapshots.selectors.history import snapshot_as_of
from snapshots.services.run import SNAPSHOT_LOCK, SnapshotRunBusy, snapshot_run_execute
from tests.conftest import T0, event
from tests.locks import advisory_lock_held_elsewhere

DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _fields(snapshot: Snapshot) -> tuple:
    return (
        snapshot.sequence,
        snapshot.taken_at,
        snapshot.value,
        snapshot.event_count,
        snapshot.change,
        snapshot.change_events,
        snapshot.late_events,
        snapshot.status,
        snapshot.reason,
    )


@pytest.mark.django_db
def test_first_snapshot_copies_the_total(pipeline):
    pipeline.post([event("a", T0, "2.5"), event("b", T0, "4")], at=T0)

    run = pipeline.snapshot(at=T0 + HOUR)

    [snapshot] = pipeline.snapshots(DAY)
    assert _fields(snapshot) == (
        1, T0 + HOUR, Decimal("6.5"), 2, Decimal("6.5"), 2, 0, "live", SnapshotReason.FIRST
    )  # fmt: skip
    assert (run.outcome, run.days_snapshotted, run.finished_at >= run.started_at) == ("ok", 1, True)


@pytest.mark.django_db
def test_a_run_with_nothing_changed_writes_nothing(pipeline):
    pipeline.post([event("a", T0)], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    run = pipeline.snapshot(at=T0 + 2 * HOUR)

    assert run.days_snapshotted == 0
    assert len(pipeline.snapshots(DAY)) == 1


@pytest.mark.django_db
def test_new_events_on_a_live_day_are_an_update(pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    pipeline.post([event("b", T0, "2")], at=T0 + 2 * HOUR)

    pipeline.snapshot(at=T0 + 3 * HOUR)

    second = pipeline.snapshots(DAY)[1]
    assert (second.reason, second.change, second.change_events, second.late_events) == (
        SnapshotReason.UPDATE, Decimal("2"), 1, 0
    )  # fmt: skip


@pytest.mark.django_db
def test_late_event_changes_the_next_snapshot_and_leaves_earlier_ones_identical(pipeline):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    pipeline.snapshot(at=DAY_END + HOUR)  # nothing changed: no snapshot
    before = [_fields(s) for s in pipeline.snapshots(DAY)]

    pipeline.post([event("late", T0 + HOUR, "5")], at=DAY_END + 2 * HOUR)
    pipeline.snapshot(at=DAY_END + 3 * HOUR)

    snapshots = pipeline.snapshots(DAY)
    assert [_fields(s) for s in snapshots[:-1]] == before
    latest = snapshots[-1]
    assert (latest.value, latest.change, latest.late_events, latest.status, latest.reason) == (
        Decimal("15"), Decimal("5"), 1, "provisional", SnapshotReason.LATE_DATA
    )  # fmt: skip
    assert latest.late_event_count == 1


@pytest.mark.django_db
def test_a_day_that_turns_final_gets_one_final_snapshot_even_without_change(pipeline):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    pipeline.snapshot(at=DAY_END + dt.timedelta(days=1))  # allowed lateness (1 day) is over
    pipeline.snapshot(at=DAY_END + dt.timedelta(days=2))

    snapshots = pipeline.snapshots(DAY)
    assert [(s.status, s.reason, s.change) for s in snapshots] == [
        ("live", SnapshotReason.FIRST, Decimal("10")),
        ("final", SnapshotReason.FINAL, Decimal("0")),
    ]
    assert pipeline.total(DAY).finalized


@pytest.mark.django_db
def test_only_changed_days_are_snapshotted(pipeline):
    pipeline.post([event(f"d{n}", T0 - dt.timedelta(hours=n * 24), "1") for n in range(5)], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    pipeline.post([event("x", T0 - dt.timedelta(days=2), "1")], at=T0 + 2 * HOUR)
    run = pipeline.snapshot(at=T0 + 3 * HOUR)

    assert run.days_snapshotted == 1
    assert len(pipeline.snapshots(DAY - dt.timedelta(days=2))) == 2


@pytest.mark.django_db
def test_as_of_shows_what_the_day_showed_then(pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    pipeline.post([event("b", T0, "2")], at=T0 + 2 * HOUR)
    pipeline.snapshot(at=T0 + 3 * HOUR)
    day_total = pipeline.total(DAY)

    assert snapshot_as_of(day_total=day_total, as_of=T0) is None
    assert snapshot_as_of(day_total=day_total, as_of=T0 + HOUR).value == Decimal("1")
    assert snapshot_as_of(day_total=day_total, as_of=T0 + 2 * HOUR).value == Decimal("1")
    assert snapshot_as_of(day_total=day_total, as_of=T0 + 5 * HOUR).value == Decimal("3")


@pytest.mark.django_db
def test_snapshot_run_queries_do_not_grow_with_history(pipeline):
    def history(days: int, prefix: str, start: dt.datetime) -> None:
        pipeline.post(
            [event(f"{prefix}{n}", start - dt.timedelta(days=n), "1") for n in range(days)],
            at=start,
        )
        pipeline.snapshot(at=start + HOUR)

    def one_change_then_count(start: dt.datetime, prefix: str) -> int:
        pipeline.post([event(f"{prefix}-new", start, "1")], at=start + 2 * HOUR)
        with CaptureQueriesContext(connection) as captured:
            run = pipeline.snapshot(at=start + 3 * HOUR)
        assert run.days_snapshotted == 1
        return len(captured.captured_queries)

    history(3, "small", T0)
    small = one_change_then_count(T0, "small")
    history(60, "large", T0 + dt.timedelta(days=1))
    large = one_change_then_count(T0 + dt.timedelta(days=1), "large")

    assert small == large


@pytest.mark.django_db
def test_snapshots_refuse_update_and_delete_through_the_orm(pipeline):
    pipeline.post([event("a", T0)], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    snapshot = Snapshot.objects.get()

    snapshot.value = Decimal("999")
    with pytest.raises(ImmutableSnapshotError):
        snapshot.save()
    with pytest.raises(ImmutableSnapshotError):
        snapshot.delete()
    with pytest.raises(ImmutableSnapshotError):
        Snapshot.objects.filter(pk=snapshot.pk).update(value=0)
    with pytest.raises(ImmutableSnapshotError):
        Snapshot.objects.all().delete()
    assert Snapshot.objects.get().value == Decimal("1")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    ["UPDATE snapshots_snapshot SET value = 0", "DELETE FROM snapshots_snapshot"],
    ids=["update", "delete"],
)
def test_the_database_refuses_raw_sql_that_changes_a_snapshot(pipeline, statement):
    pipeline.post([event("a", T0, "7")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    with (
        pytest.raises((IntegrityError, DatabaseError)),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert list(Snapshot.objects.values_list("value", flat=True)) == [Decimal("7")]


@pytest.mark.django_db
def test_the_postgresql_trigger_names_the_refused_operation(pipeline):
    pipeline.post([event("a", T0, "7")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    with (
        pytest.raises(IntegrityError, match="immutable: UPDATE"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE snapshots_snapshot SET reason = 'final'")


@pytest.mark.django_db(transaction=True)
def test_a_run_while_another_holds_the_lock_is_refused_and_logged_as_skipped(pipeline):
    pipeline.post([event("a", T0)], at=T0)

    with advisory_lock_held_elsewhere(SNAPSHOT_LOCK), pytest.raises(SnapshotRunBusy):
        pipeline.snapshot(at=T0 + HOUR)

    assert list(SnapshotRun.objects.values_list("outcome", flat=True)) == [RunOutcome.SKIPPED]
    assert pipeline.snapshot(at=T0 + 2 * HOUR).days_snapshotted == 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_runs_never_write_a_snapshot_twice(pipeline):
    for round_number in range(5):
        at = T0 + round_number * HOUR
        pipeline.post(
            [event(f"r{round_number}-d{d}", T0 - dt.timedelta(days=d), "1") for d in range(20)],
            at=at,
        )
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def run(at=at, barrier=barrier, errors=errors) -> None:
            try:
                barrier.wait()
                snapshot_run_execute(now=at + dt.timedelta(minutes=30), trigger="schedule")
            except SnapshotRunBusy:
                pass
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []

    per_day = {}
    for snapshot in Snapshot.objects.all():
        per_day.setdefault(snapshot.day, []).append(snapshot.sequence)
    assert all(sorted(seqs) == list(range(1, 6)) for seqs in per_day.values()), per_day
    written = sum(
        SnapshotRun.objects.filter(outcome="ok").values_list("days_snapshotted", flat=True)
    )
    assert written == Snapshot.objects.count() == 100
