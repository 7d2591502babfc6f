"""Publishing fewer apply messages (events/services/enqueue.py): a batch that commits while
an apply task is queued or running publishes nothing, and that task's end publishes one for
whatever is still waiting. These tests prove that no batch is left waiting with no task to
take it, whatever the interleaving, without counting on the sweeper."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from events import tasks as events_tasks
from events.models import BatchStatus, IngestBatch, IngestChannel
from events.services import enqueue
from events.services.apply import batch_apply_failure_record, batches_apply_coalesced
from events.services.enqueue import apply_task_ended, batch_enqueue_apply_once
from events.services.ingest import events_ingest
from events.tasks import apply_batch

NOW = dt.datetime(2026, 11, 18, 12, tzinfo=dt.UTC)
_ids = itertools.count()


def _post(received_at: dt.datetime = NOW) -> int:
    """One committed batch of one event; returns its id (the ring is the caller's)."""
    result = events_ingest(
        raw_events=[
            {
                "event_id": f"flag-{next(_ids)}",
                "event_time": (received_at - dt.timedelta(hours=1)).isoformat(),
                "value": "1",
            }
        ],
        received_at=received_at,
        channel=IngestChannel.API,
        enqueue=False,
    )
    return result.batch_id


@pytest.fixture
def published(monkeypatch) -> list[int]:
    """The apply tasks published, in order, instead of sending them to the broker."""
    sent: list[int] = []
    monkeypatch.setattr(
        enqueue, "batch_enqueue_apply", lambda batch_id: sent.append(batch_id) or True
    )
    return sent


def _waiting() -> set[int]:
    return set(IngestBatch.objects.filter(status=BatchStatus.RECEIVED).values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_burst_publishes_one_task_and_that_task_applies_the_burst(published):
    batches = [_post() for _ in range(3)]
    for batch_id in batches:
        assert batch_enqueue_apply_once(batch_id) is True

    assert published == batches[:1]

    apply_batch(batches[0])  # the task body, in this process

    assert _waiting() == set()
    assert published == batches[:1]  # nothing was left for another task
    # The task's end took the flag down: the next batch publishes its own task.
    later = _post()
    batch_enqueue_apply_once(later)
    assert published == [batches[0], later]


@pytest.mark.django_db
def test_a_batch_that_commits_while_the_task_runs_gets_a_task_at_its_end(published):
    first = _post()
    batch_enqueue_apply_once(first)
    batches_apply_coalesced(batch_id=first, now=NOW, max_batches=100, max_events=20_000)
    during = _post()  # commits after the task claimed what was waiting, before it ended
    batch_enqueue_apply_once(during)
    assert published == [first]

    assert apply_task_ended(batch_id=first, failed=False) is None  # not this task's to apply
    assert published == [first, during]


def _posting_during_each_apply(monkeypatch, count: int) -> list[int]:
    """While each of the first `count` applies runs, another batch commits and rings."""
    posted: list[int] = []
    real = batches_apply_coalesced

    def apply_then_post(**kwargs):
        result = real(**kwargs)
        if len(posted) < count:
            posted.append(_post(NOW + dt.timedelta(seconds=len(posted) + 1)))
            batch_enqueue_apply_once(posted[-1])
        return result

    monkeypatch.setattr("events.tasks.batches_apply_coalesced", apply_then_post)
    return posted


@pytest.mark.django_db
def test_a_task_keeps_applying_what_commits_while_it_runs_with_no_new_message(
    published, monkeypatch
):
    first = _post()
    batch_enqueue_apply_once(first)
    posted = _posting_during_each_apply(monkeypatch, 3)

    outcome = apply_batch(first)

    assert _waiting() == set()
    assert len(posted) == 3
    assert published == [first]  # the three that came meanwhile cost no message
    assert (outcome["batches"], outcome["events"]) == (4, 4)


def _sleeping_posts(monkeypatch) -> tuple[list[float], list[int]]:
    """The task's waits, recorded instead of slept; during each, another batch commits."""
    waits: list[float] = []
    posted: list[int] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        posted.append(_post(NOW + dt.timedelta(seconds=1.02)))
        batch_enqueue_apply_once(posted[-1])

    monkeypatch.setattr("events.tasks.time.sleep", sleep)
    return waits, posted


@pytest.mark.django_db
def test_a_task_lets_the_batch_it_takes_on_gather_what_commits_meanwhile(
    published, monkeypatch, settings
):
    settings.APPLY_GATHER_SECONDS = 0.05
    first = _post()
    batch_enqueue_apply_once(first)
    handed = _posting_during_each_apply(monkeypatch, 1)  # received at NOW + 1 s
    calls = mock.Mock(wraps=events_tasks.batches_apply_coalesced)
    monkeypatch.setattr("events.tasks.batches_apply_coalesced", calls)
    waits, meanwhile = _sleeping_posts(monkeypatch)

    with time_machine.travel(NOW + dt.timedelta(seconds=1.01), tick=False):
        outcome = apply_batch(first)

    assert waits == [pytest.approx(0.04)]  # until the batch handed on is 0.05 s old
    # The batch that committed during the wait was applied with it, in the same transaction.
    assert [call.kwargs["batch_id"] for call in calls.call_args_list] == [first, handed[0]]
    assert (outcome["batches"], outcome["events"]) == (3, 3)
    applied_at = IngestBatch.objects.filter(pk__in=[handed[0], meanwhile[0]])
    assert len({batch.applied_at for batch in applied_at}) == 1
    assert _waiting() == set()
    assert published == [first]


@pytest.mark.django_db
def test_a_backlog_is_not_held_up(published, monkeypatch, settings):
    settings.APPLY_GATHER_SECONDS = 0.05
    first = _post()
    batch_enqueue_apply_once(first)
    posted = _posting_during_each_apply(monkeypatch, 2)  # received at NOW + 1 s, + 2 s
    waits, _ = _sleeping_posts(monkeypatch)

    with time_machine.travel(NOW + dt.timedelta(seconds=3), tick=False):
        outcome = apply_batch(first)  # each batch handed on is older than 0.05 s

    assert waits == []
    assert (outcome["batches"], len(posted)) == (3, 2)
    assert _waiting() == set()


@pytest.mark.django_db
def test_without_gathering_the_task_never_waits(published, monkeypatch, settings):
    settings.APPLY_GATHER_SECONDS = 0
    first = _post()
    batch_enqueue_apply_once(first)
    handed = _posting_during_each_apply(monkeypatch, 1)  # received at NOW + 1 s
    waits, _ = _sleeping_posts(monkeypatch)

    with time_machine.travel(NOW + dt.timedelta(seconds=1.01), tick=False):
        outcome = apply_batch(first)  # the batch handed on is 0.01 s old

    assert waits == []
    assert (outcome["batches"], len(handed)) == (2, 1)
    assert _waiting() == set()


@pytest.mark.django_db
def test_without_keeping_going_the_task_publishes_one_for_what_came_meanwhile(
    published, monkeypatch, settings
):
    settings.APPLY_TASK_KEEP_GOING_SECONDS = 0
    first = _post()
    batch_enqueue_apply_once(first)
    posted = _posting_during_each_apply(monkeypatch, 1)

    apply_batch(first)

    assert published == [first, posted[0]]
    assert _waiting() == {posted[0]}


@pytest.mark.django_db
def test_batches_left_over_by_the_cap_get_a_task(published, settings):
    settings.APPLY_TASK_KEEP_GOING_SECONDS = 0
    settings.APPLY_COALESCE_MAX_BATCHES = 2
    batches = [_post(NOW + dt.timedelta(seconds=n)) for n in range(3)]
    for batch_id in batches:
        batch_enqueue_apply_once(batch_id)

    apply_batch(batches[0])

    assert _waiting() == {batches[2]}
    assert published == [batches[0], batches[2]]
    apply_batch(batches[2])
    assert _waiting() == set()


@pytest.mark.django_db
def test_a_failed_task_hands_the_others_on_and_not_its_own_batch(published, monkeypatch):
    batches = [_post(NOW + dt.timedelta(seconds=n)) for n in range(2)]
    for batch_id in batches:
        batch_enqueue_apply_once(batch_id)
    monkeypatch.setattr(
        "events.tasks.batches_apply_coalesced", mock.Mock(side_effect=RuntimeError("boom"))
    )

    with pytest.raises(RuntimeError):
        apply_batch(batches[0])

    failed = IngestBatch.objects.get(pk=batches[0])
    assert failed.status == BatchStatus.RECEIVED
    assert failed.last_error == "RuntimeError: boom"  # the sweeper's, not another task's
    assert published == batches  # the other batch got a task


@pytest.mark.django_db
def test_a_failed_publish_takes_the_flag_down_again(monkeypatch):
    sent: list[int] = []
    outcomes = iter([False, True])
    monkeypatch.setattr(
        enqueue, "batch_enqueue_apply", lambda batch_id: sent.append(batch_id) or next(outcomes)
    )
    lost, next_one = _post(), _post()

    assert batch_enqueue_apply_once(lost) is False  # left to the sweeper, as before
    assert batch_enqueue_apply_once(next_one) is True

    assert sent == [lost, next_one]  # the second found the flag down and published


@pytest.mark.django_db
def test_with_the_flag_off_every_batch_publishes(published, settings):
    settings.APPLY_PUBLISH_FLAG_SECONDS = 0
    batches = [_post() for _ in range(3)]
    for batch_id in batches:
        batch_enqueue_apply_once(batch_id)

    assert published == batches


class PublishFlagMachine(RuleBasedStateMachine):
    """Posts, tasks that apply (under small caps), crash, end, or run twice, publishes that
    fail, the flag expiring, the sweeper: in any order. After every step, if no task is
    queued or running, nothing is waiting but batches whose publish failed or whose own
    apply failed (those two are the sweeper's, as before this flag existed)."""

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.clock = NOW
        self.queued: list[int] = []  # tasks published, not started
        self.running: list[tuple[int, bool]] = []  # (batch id, failed), started, not ended
        self.publish_fails = False
        self.publish_failed: set[int] = set()
        self.ever_queued: list[int] = []
        self._patch = mock.patch.object(enqueue, "batch_enqueue_apply", self._publish)
        self._patch.start()
        flag = enqueue._publish_flag()
        assert flag is not None, "the flag needs the Redis cache"
        enqueue._publish_flag_lower(flag)

    def teardown(self) -> None:
        self._patch.stop()
        enqueue._publish_flag_lower(enqueue._publish_flag())
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    def _publish(self, batch_id: int) -> bool:
        if self.publish_fails:
            self.publish_failed.add(batch_id)
            return False
        self.queued.append(batch_id)
        self.ever_queued.append(batch_id)
        return True

    @rule(fails=st.booleans())
    def post(self, fails: bool) -> None:
        """A batch commits, then rings (its publish may fail: a broker outage)."""
        self.clock += dt.timedelta(seconds=1)
        batch_id = _post(self.clock)
        self.publish_fails = fails and len(self.publish_failed) < 2
        try:
            batch_enqueue_apply_once(batch_id)
        finally:
            self.publish_fails = False

    @precondition(lambda self: self.queued)
    @rule(data=st.data(), caps=st.sampled_from([(1, 20_000), (2, 20_000), (100, 2), (100, 20_000)]))
    def start_task(self, data: st.DataObject, caps: tuple[int, int]) -> None:
        """A queued task (any one: the broker does not promise order) applies its batch and
        whatever else is waiting, under the caps."""
        batch_id = self.queued.pop(data.draw(st.integers(0, len(self.queued) - 1)))
        batches_apply_coalesced(
            batch_id=batch_id, now=self.clock, max_batches=caps[0], max_events=caps[1]
        )
        self.running.append((batch_id, False))

    @precondition(lambda self: self.queued)
    @rule(data=st.data())
    def start_task_that_fails(self, data: st.DataObject) -> None:
        """A task whose apply rolls back (nothing it claimed is applied)."""
        batch_id = self.queued.pop(data.draw(st.integers(0, len(self.queued) - 1)))
        batch_apply_failure_record(batch_id=batch_id, error=RuntimeError("crash"), now=self.clock)
        self.running.append((batch_id, True))

    @precondition(lambda self: self.queued)
    @rule(data=st.data())
    def task_delivered_twice(self, data: st.DataObject) -> None:
        """A redelivery: the same message again, beside the original."""
        self.queued.append(data.draw(st.sampled_from(self.queued)))

    @precondition(lambda self: self.running)
    @rule(data=st.data(), keep_going=st.booleans())
    def end_task(self, data: st.DataObject, keep_going: bool) -> None:
        """An apply ends; with keep_going its task applies the batch handed on itself (a
        task certain to start: queued here, like a published one)."""
        batch_id, failed = self.running.pop(data.draw(st.integers(0, len(self.running) - 1)))
        following = apply_task_ended(batch_id=batch_id, failed=failed, keep_going=keep_going)
        if following is not None:
            assert keep_going
            self.queued.append(following.batch_id)

    @rule()
    def flag_expires(self) -> None:
        enqueue._publish_flag_lower(enqueue._publish_flag())

    @rule()
    def sweeper(self) -> None:
        """The sweeper publishes a task for every batch still waiting (here: at once)."""
        for batch_id in sorted(_waiting()):
            self.queued.append(batch_id)
        self.publish_failed.clear()

    @invariant()
    def nothing_waits_without_a_task_coming(self) -> None:
        if self.queued or self.running:
            return
        stranded = (
            set(
                IngestBatch.objects.filter(
                    status=BatchStatus.RECEIVED, last_error_at__isnull=True
                ).values_list("pk", flat=True)
            )
            - self.publish_failed
        )
        assert stranded == set(), f"waiting with no task coming: {sorted(stranded)}"

    @invariant()
    def the_values_applied_match_the_batches_applied(self) -> None:
        applied = IngestBatch.objects.filter(status=BatchStatus.APPLIED).count()
        from aggregation.models import DayTotal

        assert sum((d.value for d in DayTotal.objects.all()), Decimal(0)) == applied


@pytest.mark.django_db
def test_no_batch_waits_without_a_task_coming_under_any_interleaving():
    run_state_machine_as_test(
        PublishFlagMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


@pytest.mark.django_db
def test_a_task_that_keeps_going_applies_the_caps_leftovers_itself(published, settings):
    settings.APPLY_COALESCE_MAX_BATCHES = 2
    batches = [_post(NOW + dt.timedelta(seconds=n)) for n in range(5)]
    for batch_id in batches:
        batch_enqueue_apply_once(batch_id)

    outcome = apply_batch(batches[0])

    assert _waiting() == set()
    assert published == batches[:1]
    assert outcome["batches"] == 5
