"""Apply: exactly once under redelivery, concurrency and crashes; late and too-late events."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from aggregation.models import Contribution, DayTotal
from events.models import BatchStatus, IngestBatch, QuarantinedEvent
from events.selectors.events import event_get, event_state
from events.services import apply as apply_services
from events.services.apply import batch_apply
from events.services.quarantine import quarantine_accept, quarantine_reject
from snapshots.models import SnapshotReason
from tests.conftest import T0, event
from tests.factories import MetricFactory
from tests.locks import in_threads

DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_applying_the_same_batch_twice_counts_it_once(pipeline):
    result = pipeline.ingest([event("a", T0, "5"), event("b", T0, "7")], at=T0)

    first = batch_apply(batch_id=result.batch_id, now=T0)
    second = batch_apply(batch_id=result.batch_id, now=T0)

    assert (first.applied, second.applied) == (True, False)
    total = pipeline.total(DAY)
    assert (total.value, total.event_count, total.revision) == (Decimal("12"), 2, 1)
    assert Contribution.objects.count() == 1


@pytest.mark.django_db
def test_a_crash_mid_apply_rolls_back_the_claim_and_the_totals(pipeline, monkeypatch):
    result = pipeline.ingest([event("a", T0, "5")], at=T0)

    add_then_crash_before_commit = apply_services.ledger_append_grouped

    def crash(*args, **kwargs):
        add_then_crash_before_commit(*args, **kwargs)
        raise RuntimeError("worker died")

    with monkeypatch.context() as patch:
        patch.setattr(apply_services, "ledger_append_grouped", crash)
        with pytest.raises(RuntimeError):
            batch_apply(batch_id=result.batch_id, now=T0)

    assert IngestBatch.objects.get().status == BatchStatus.RECEIVED
    assert not Contribution.objects.exists()
    assert pipeline.total(DAY).value == 0
    assert batch_apply(batch_id=result.batch_id, now=T0).applied
    assert pipeline.total(DAY).value == Decimal("5")


@pytest.mark.django_db
def test_the_database_refuses_a_second_contribution_of_a_batch_to_a_day(pipeline):
    pipeline.post([event("a", T0, "5")], at=T0)
    contribution = Contribution.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        Contribution.objects.create(
            day_total=contribution.day_total,
            batch=contribution.batch,
            value=5,
            event_count=1,
            applied_at=T0,
        )


@pytest.mark.django_db(transaction=True)
def test_two_workers_applying_one_batch_at_once_count_it_once(pipeline):
    result = pipeline.ingest([event(f"e{i}", T0, "1.25") for i in range(100)], at=T0)
    outcomes: list[bool] = []

    errors = in_threads(
        4, lambda: outcomes.append(batch_apply(batch_id=result.batch_id, now=T0).applied)
    )

    assert errors == []
    assert sorted(outcomes) == [False, False, False, True]
    total = pipeline.total(DAY)
    assert (total.value, total.event_count, total.revision) == (Decimal("125"), 100, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_on_the_same_days_all_add_up(pipeline):
    days = [T0 - dt.timedelta(days=n) for n in range(3)]
    batch_ids = [
        pipeline.ingest(
            [event(f"b{b}-d{d}", when, "1") for d, when in enumerate(days)], at=T0
        ).batch_id
        for b in range(8)
    ]
    queue = list(batch_ids)
    lock = threading.Lock()

    def apply_some() -> None:
        while True:
            with lock:
                if not queue:
                    return
                batch_id = queue.pop()
            batch_apply(batch_id=batch_id, now=T0)

    assert in_threads(4, apply_some) == []
    assert sorted(DayTotal.objects.values_list("event_count", flat=True)) == [8, 8, 8]


@pytest.mark.django_db
def test_an_event_is_late_only_once_its_day_has_ended_and_had_a_snapshot(pipeline):
    pipeline.post([event("on-time", T0)], at=T0)
    pipeline.post([event("before-any-snapshot", T0)], at=T0 + dt.timedelta(hours=1))
    pipeline.snapshot(at=T0 + dt.timedelta(hours=2))
    pipeline.post([event("same-day", T0)], at=T0 + dt.timedelta(hours=3))
    pipeline.post([event("after-day-end", T0)], at=DAY_END + dt.timedelta(hours=1))

    states = {
        event_id: event_state(event_get(event_id=event_id)).late
        for event_id in ["on-time", "before-any-snapshot", "same-day", "after-day-end"]
    }

    assert states == {
        "on-time": False,
        "before-any-snapshot": False,
        "same-day": False,
        "after-day-end": True,
    }
    assert pipeline.total(DAY).late_event_count == 1


@pytest.mark.django_db
def test_too_late_event_under_restate_policy_is_counted_as_a_restatement(pipeline):
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=DAY_END + dt.timedelta(days=2))  # first snapshot, already final

    pipeline.post([event("too-late", T0, "3")], at=DAY_END + dt.timedelta(days=3))
    run = pipeline.snapshot(at=DAY_END + dt.timedelta(days=3, minutes=5))

    total = pipeline.total(DAY)
    assert (total.value, total.too_late_event_count) == (Decimal("13"), 1)
    [first, restatement] = pipeline.snapshots(DAY)
    assert first.status == "final"
    assert (restatement.reason, restatement.change, restatement.run_id) == (
        SnapshotReason.RESTATEMENT,
        Decimal("3"),
        run.pk,
    )
    assert pipeline.total(DAY).restated


@pytest.fixture
def quarantined_metric(db):
    return MetricFactory(
        name="held", too_late_policy="quarantine", allowed_lateness=dt.timedelta(hours=6)
    )


@pytest.mark.django_db
def test_too_late_events_under_quarantine_are_held_and_not_counted(pipeline, quarantined_metric):
    pipeline.post([event("a", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))

    pipeline.post(
        [
            event("in-time", T0, "1", metric="held", arrival_time=DAY_END + dt.timedelta(hours=5)),
            event(
                "too-late", T0, "100", metric="held", arrival_time=DAY_END + dt.timedelta(hours=7)
            ),
        ],
        at=DAY_END + dt.timedelta(hours=7),
    )

    assert pipeline.total(DAY, "held").value == Decimal("11")
    assert event_state(event_get(event_id="too-late")).status == "quarantined"
    assert event_state(event_get(event_id="in-time")).status == "applied"
    assert QuarantinedEvent.objects.get().event.event_id == "too-late"


@pytest.mark.django_db
def test_accepting_held_events_counts_them_as_a_restatement(pipeline, quarantined_metric, operator):
    pipeline.post([event("a", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=7))  # final
    pipeline.post([event("late-1", T0, "4", metric="held")], at=DAY_END + dt.timedelta(hours=8))
    pipeline.post([event("late-2", T0, "5", metric="held")], at=DAY_END + dt.timedelta(hours=9))
    held = list(QuarantinedEvent.objects.values_list("pk", flat=True))

    accepted = quarantine_accept(
        event_pks=held,
        decided_by_id=operator.pk,
        reason="checked",
        now=DAY_END + dt.timedelta(hours=10),
    )
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=11))

    assert accepted == 2
    [_, restatement] = pipeline.snapshots(DAY, "held")
    assert (restatement.reason, restatement.change, restatement.change_events) == (
        SnapshotReason.RESTATEMENT,
        Decimal("9"),
        2,
    )
    assert event_state(event_get(event_id="late-1")) == event_state(event_get(event_id="late-2"))
    assert event_state(event_get(event_id="late-1")).snapshot == 2
    decision = QuarantinedEvent.objects.first()
    assert (decision.decided_by, decision.decision_reason) == (operator, "checked")


@pytest.mark.django_db
def test_rejecting_held_events_keeps_them_on_record_uncounted(pipeline, quarantined_metric):
    pipeline.post([event("a", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=7))
    pipeline.post([event("late", T0, "4", metric="held")], at=DAY_END + dt.timedelta(hours=8))

    rejected = quarantine_reject(
        event_pks=[QuarantinedEvent.objects.get().pk],
        decided_by_id=None,
        reason="bad partner file",
        now=DAY_END + dt.timedelta(hours=9),
    )

    assert rejected == 1
    assert pipeline.total(DAY, "held").value == Decimal("10")
    assert event_state(event_get(event_id="late")).status == "rejected_too_late"
    assert pipeline.snapshot(at=DAY_END + dt.timedelta(hours=10)).days_snapshotted == 0
    assert (
        quarantine_accept(
            event_pks=[QuarantinedEvent.objects.get().pk], decided_by_id=None, reason="", now=T0
        )
        == 0
    )
