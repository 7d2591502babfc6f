"""Coalesced applies: an apply task applies its batch and other waiting batches in one
transaction, each batch still counted exactly once, with its own contributions."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import DataError, connection

from aggregation.models import Contribution, DaySourceTotal, DayTotal
from events import tasks
from events.models import BatchStatus, IngestBatch, QuarantinedEvent
from events.selectors.events import event_get, event_state
from events.services import apply as apply_services
from events.services.apply import batch_apply, batches_apply_coalesced
from tests.conftest import T0, event, wait_for
from tests.factories import MetricFactory
from tests.locks import held_elsewhere, in_threads

DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
PLENTY = {"max_batches": 100, "max_events": 100_000}


def coalesced(batch_id: int, now: dt.datetime = T0, **caps: int):
    return batches_apply_coalesced(batch_id=batch_id, now=now, **{**PLENTY, **caps})


def waiting() -> set[int]:
    return set(IngestBatch.objects.filter(status=BatchStatus.RECEIVED).values_list("pk", flat=True))


def contributions() -> list[tuple[int, dt.date, str, Decimal, int]]:
    return sorted(
        Contribution.objects.values_list(
            "batch_id", "day_total__day", "source", "value", "event_count"
        )
    )


@pytest.mark.django_db
def test_one_apply_takes_every_waiting_batch_and_keeps_a_contribution_per_batch(pipeline):
    yesterday = T0 - dt.timedelta(days=1)
    first = pipeline.ingest([event("a", T0, "1", source="web"), event("b", yesterday, "2")], T0)
    second = pipeline.ingest([event("c", T0, "4", source="web")], T0)
    third = pipeline.ingest([event("d", T0, "8"), event("e", T0, "16", source="web")], T0)

    result = coalesced(second.batch_id)

    # The batch asked for first, then the others, oldest first.
    assert result.batch_ids == (second.batch_id, first.batch_id, third.batch_id)
    assert (result.applied, result.events, result.day_totals) == (True, 5, 2)
    assert waiting() == set()
    today = pipeline.total(DAY)
    # One increment of each day total for the three batches.
    assert (today.value, today.event_count, today.revision) == (Decimal("29"), 4, 1)
    assert pipeline.total(yesterday.date()).value == Decimal("2")
    # Explanations stay per batch: one contribution per (batch, day, source).
    assert contributions() == [
        (first.batch_id, yesterday.date(), "", Decimal("2"), 1),
        (first.batch_id, DAY, "web", Decimal("1"), 1),
        (second.batch_id, DAY, "web", Decimal("4"), 1),
        (third.batch_id, DAY, "", Decimal("8"), 1),
        (third.batch_id, DAY, "web", Decimal("16"), 1),
    ]
    # Three batches added to the web source of the day in one statement.
    sources = dict(DaySourceTotal.objects.filter(day=DAY).values_list("source", "value"))
    assert sources == {"": Decimal("8"), "web": Decimal("21")}


@pytest.mark.django_db
def test_the_tasks_of_batches_taken_along_find_them_applied_and_do_nothing(pipeline):
    batch_ids = [pipeline.ingest([event(f"e{n}", T0, "1")], T0).batch_id for n in range(4)]
    assert coalesced(batch_ids[0]).batch_ids == tuple(batch_ids)

    later = [coalesced(batch_id) for batch_id in batch_ids]
    alone = batch_apply(batch_id=batch_ids[2], now=T0)

    assert [(r.applied, r.batch_ids) for r in later] == [(False, ())] * 4
    assert not alone.applied
    total = pipeline.total(DAY)
    assert (total.value, total.revision, Contribution.objects.count()) == (Decimal("4"), 1, 4)


@pytest.mark.django_db
def test_an_apply_whose_batch_was_applied_takes_no_other(pipeline):
    done = pipeline.post([event("a", T0)], T0).batch_id
    other = pipeline.ingest([event("b", T0)], T0).batch_id

    assert not coalesced(done).applied

    assert waiting() == {other}


@pytest.mark.django_db
def test_the_caps_bound_the_batches_and_events_of_one_apply(pipeline):
    ids = [
        pipeline.ingest([event(f"b{b}-{n}", T0) for n in range(2)], T0).batch_id for b in range(6)
    ]

    by_batches = coalesced(ids[3], max_batches=3)
    # 2 events of its own, room for 3 more: one other batch of 2; the next would pass 5.
    by_events = coalesced(ids[4], max_events=5)
    # Its own batch always, even larger than the cap.
    alone = coalesced(ids[5], max_events=1)

    assert by_batches.batch_ids == (ids[3], ids[0], ids[1])
    assert by_events.batch_ids == (ids[4], ids[2])
    assert alone.batch_ids == (ids[5],)
    assert waiting() == set()
    assert pipeline.total(DAY).event_count == 12


@pytest.mark.django_db
def test_a_cap_of_one_batch_applies_each_alone(pipeline, settings):
    ids = [pipeline.ingest([event(f"e{n}", T0)], T0).batch_id for n in range(3)]
    settings.APPLY_COALESCE_MAX_BATCHES = 1
    settings.APPLY_TASK_KEEP_GOING_SECONDS = 0  # one apply: not the task applying the rest

    outcome = tasks.apply_batch(ids[1])

    assert outcome == {"batch_id": ids[1], "applied": True, "events": 1, "batches": 1}
    assert waiting() == {ids[0], ids[2]}


@pytest.mark.django_db
def test_the_task_applies_waiting_batches_with_its_own(pipeline):
    ids = [pipeline.ingest([event(f"e{n}", T0)], T0).batch_id for n in range(3)]

    outcome = tasks.apply_batch(ids[2])

    assert outcome == {"batch_id": ids[2], "applied": True, "events": 3, "batches": 3}
    assert tasks.apply_batch(ids[0]) == {
        "batch_id": ids[0],
        "applied": False,
        "events": 0,
        "batches": 0,
    }
    assert pipeline.total(DAY).event_count == 3


@pytest.mark.django_db
def test_a_crash_mid_apply_rolls_back_every_batch_it_claimed(pipeline, monkeypatch):
    ids = [pipeline.ingest([event(f"e{n}", T0, "2")], T0).batch_id for n in range(3)]
    add_then_crash_before_commit = apply_services.ledger_append_grouped

    def crash(*args, **kwargs):
        add_then_crash_before_commit(*args, **kwargs)
        raise RuntimeError("worker died")

    with monkeypatch.context() as patch:
        patch.setattr(apply_services, "ledger_append_grouped", crash)
        with pytest.raises(RuntimeError):
            coalesced(ids[0])

    assert waiting() == set(ids)
    assert not Contribution.objects.exists()
    assert pipeline.total(DAY).value == 0
    assert coalesced(ids[2]).batch_ids == (ids[2], ids[0], ids[1])
    assert pipeline.total(DAY).value == Decimal("6")


@pytest.fixture
def quarantined_metric(db):
    return MetricFactory(
        name="held", too_late_policy="quarantine", allowed_lateness=dt.timedelta(hours=6)
    )


@pytest.mark.django_db
def test_too_late_events_are_held_batch_by_batch_when_applied_together(
    pipeline, quarantined_metric
):
    pipeline.post([event("a", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))
    at = DAY_END + dt.timedelta(hours=7)  # past the day's allowed lateness
    first = pipeline.ingest(
        [
            event("in-time", T0, "1", metric="held", arrival_time=DAY_END + dt.timedelta(hours=5)),
            event("late-1", T0, "100", metric="held"),
        ],
        at,
    )
    second = pipeline.ingest([event("late-2", T0, "200", metric="held")], at)

    result = coalesced(first.batch_id, now=at)

    assert result.batch_ids == (first.batch_id, second.batch_id)
    assert (result.events, result.held) == (1, 2)
    assert pipeline.total(DAY, "held").value == Decimal("11")
    held = QuarantinedEvent.objects.select_related("event")
    assert sorted((q.event.event_id, q.event.batch_id) for q in held) == [
        ("late-1", first.batch_id),
        ("late-2", second.batch_id),
    ]
    assert event_state(event_get(event_id="in-time")).status == "applied"
    assert event_state(event_get(event_id="late-2")).status == "quarantined"
    # The second batch added nothing to the day: it has no contribution.
    assert Contribution.objects.filter(batch_id=second.batch_id).count() == 0


@pytest.mark.django_db
def test_a_batch_the_database_refuses_does_not_hold_up_the_others(pipeline, settings):
    """A day total that would overflow makes the combined apply fail; the batch asked for
    is then applied alone, and the one that cannot be applied fails on its own."""
    settings.APPLY_TASK_KEEP_GOING_SECONDS = 0  # one apply: not the task applying the rest
    yesterday = (T0 - dt.timedelta(days=1)).date()
    bad = pipeline.ingest([event("overflows", T0 - dt.timedelta(days=1), "1")], T0).batch_id
    good = pipeline.ingest([event("fine", T0, "1")], T0).batch_id
    DayTotal.objects.filter(day=yesterday).update(value=Decimal("9" * 22))

    result = tasks.apply_batch(good)

    assert (result["applied"], result["batches"]) == (True, 1)
    assert waiting() == {bad}
    with pytest.raises(DataError):
        tasks.apply_batch(bad)
    errors = dict(IngestBatch.objects.values_list("pk", "last_error"))
    assert errors[good] == ""
    assert errors[bad].startswith("DataError: numeric field overflow")
    assert waiting() == {bad}


@pytest.mark.django_db
def test_a_task_that_keeps_going_notes_a_failure_on_the_batch_it_took_on(pipeline):
    """The task of a good batch applies it (alone: the combined apply overflows), then
    takes on the bad one, which fails: the error is noted on the bad batch, and the task
    itself succeeds, since its own batch was applied."""
    yesterday = (T0 - dt.timedelta(days=1)).date()
    bad = pipeline.ingest([event("overflows", T0 - dt.timedelta(days=1), "1")], T0).batch_id
    good = pipeline.ingest([event("fine", T0, "1")], T0).batch_id
    DayTotal.objects.filter(day=yesterday).update(value=Decimal("9" * 22))

    result = tasks.apply_batch(good)

    assert (result["applied"], result["batches"]) == (True, 1)
    errors = dict(IngestBatch.objects.values_list("pk", "last_error"))
    assert errors[good] == ""
    assert errors[bad].startswith("DataError: numeric field overflow")
    assert waiting() == {bad}  # the sweeper's


# --- Concurrency ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_coalescing_applies_at_once_take_disjoint_batches_and_count_each_once(pipeline):
    days = [T0 - dt.timedelta(days=n) for n in range(3)]
    batch_ids = [
        pipeline.ingest(
            [event(f"b{b}-d{d}", when, "1", source=f"s{b % 2}") for d, when in enumerate(days)],
            at=T0,
        ).batch_id
        for b in range(40)
    ]
    queue = list(batch_ids)
    lock = threading.Lock()
    results = []

    def apply_some() -> None:
        while True:
            with lock:
                if not queue:
                    return
                batch_id = queue.pop()
            results.append(coalesced(batch_id, max_batches=6))

    assert in_threads(4, apply_some) == []

    claimed = [batch_id for result in results for batch_id in result.batch_ids]
    assert sorted(claimed) == sorted(batch_ids)  # each batch taken by exactly one apply
    assert sum(1 for result in results if len(result.batch_ids) > 1) > 0
    assert sorted(DayTotal.objects.values_list("event_count", flat=True)) == [40, 40, 40]
    assert Contribution.objects.count() == 40 * 3
    sources = DaySourceTotal.objects.values_list("source", "event_count")
    assert sorted(sources) == [("s0", 20)] * 3 + [("s1", 20)] * 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_another_session_holds_is_skipped_without_waiting(pipeline):
    ids = [pipeline.ingest([event(f"e{n}", T0)], T0).batch_id for n in range(3)]

    def hold_the_middle_batch() -> None:
        IngestBatch.objects.select_for_update(no_key=True).filter(pk=ids[1]).get()

    with held_elsewhere(hold_the_middle_batch):
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")  # a wait would fail, not hang
        try:
            result = coalesced(ids[0])
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")

    assert result.batch_ids == (ids[0], ids[2])
    assert waiting() == {ids[1]}
    assert coalesced(ids[1]).batch_ids == (ids[1],)
    assert pipeline.total(DAY).event_count == 3


class _Paused:
    """Pauses the apply running in one named thread after its ledger append, before it
    commits; optionally makes it crash there when released."""

    def __init__(self, monkeypatch, thread_name: str) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        self.crash = False
        real = apply_services.ledger_append_grouped

        def ledger_append(**kwargs):
            result = real(**kwargs)
            if threading.current_thread().name == thread_name:
                self.inside.set()
                assert self.release.wait(30)
                if self.crash:
                    raise RuntimeError("worker died")
            return result

        monkeypatch.setattr(apply_services, "ledger_append_grouped", ledger_append)


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _run(name: str, target, outcome: dict) -> threading.Thread:
    def run() -> None:
        try:
            outcome[name] = target()
        except BaseException as exc:
            outcome[name] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_commits", [True, False], ids=["commits", "crashes"])
def test_the_task_of_a_batch_taken_along_waits_for_the_apply_that_took_it(
    pipeline, monkeypatch, first_commits
):
    """Its own batch is claimed as a single apply claims it (waiting for the row), so the
    task of a batch another apply holds learns the outcome: applied (nothing to do), or
    rolled back (it applies it, with the other batch rolled back too)."""
    first, second = (pipeline.ingest([event(f"e{n}", T0, "5")], T0).batch_id for n in range(2))
    paused = _Paused(monkeypatch, "first")
    outcome: dict[str, object] = {}

    one = _run("first", lambda: coalesced(first), outcome)
    try:
        assert paused.inside.wait(30)
        two = _run("second", lambda: coalesced(second), outcome)
        wait_for(lambda: _waiting_on_a_lock() == 1, 30, "the second apply to wait")
        paused.crash = not first_commits
    finally:
        paused.release.set()
        one.join(30)
    two.join(30)

    if first_commits:
        assert outcome["first"].batch_ids == (first, second)
        assert (outcome["second"].applied, outcome["second"].batch_ids) == (False, ())
    else:
        assert isinstance(outcome["first"], RuntimeError)
        assert outcome["second"].batch_ids == (second, first)
    total = pipeline.total(DAY)
    assert (total.value, total.event_count, total.revision) == (Decimal("10"), 2, 1)
    assert waiting() == set()


@pytest.mark.django_db(transaction=True)
def test_many_tasks_of_one_batch_at_once_apply_it_once(pipeline):
    batch_id = pipeline.ingest([event(f"e{i}", T0, "1.25") for i in range(100)], at=T0).batch_id
    other = pipeline.ingest([event("other", T0, "1")], at=T0).batch_id
    outcomes = []

    errors = in_threads(4, lambda: outcomes.append(coalesced(batch_id).batch_ids))

    assert errors == []
    assert sorted(outcomes) == [(), (), (), (batch_id, other)]
    total = pipeline.total(DAY)
    assert (total.value, total.event_count, total.revision) == (Decimal("126"), 101, 1)
