"""The fault run's independent checker (bench/faults/truth.py) finds what it must: it is
handed the generator's log and the database, and each kind of wrong end state shows."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from aggregation.models import DayTotal
from bench.faults.load import AckLog, Batch
from bench.faults.truth import truth_check, truth_violations
from events.models import Event, QuarantinedEvent
from harness.databases import connect
from tests.conftest import event, test_database_url

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sent(pipeline) -> tuple[AckLog, list[dict]]:
    """Events posted as the generator does, with its log of the 202s."""
    now = timezone.now()
    payloads = [
        event("a", now, "1.50", source="web"),
        event("b", now - dt.timedelta(days=1), "2"),
        event("bad", now, "NaN"),
        event("c", now, "3"),
    ]
    log = AckLog()
    first_sent = time.time()
    result = pipeline.post(payloads, at=now)
    log.record_ack(Batch(client=0, events=payloads), result.as_response(), first_sent)
    return log, payloads


def _check(log: AckLog) -> dict[str, int]:
    with connect(test_database_url(), autocommit=True) as db:
        result = truth_check(db, log, held_metric="held", held_lateness=dt.timedelta(hours=1))
    return {name: count for name, count in truth_violations(result).items() if count}


def test_an_honest_end_state_passes(sent):
    log, _ = sent

    assert _check(log) == {}


def test_a_total_off_from_the_generators_sums_is_found(sent):
    log, _ = sent
    DayTotal.objects.filter(event_count=2).update(value="99")

    assert _check(log) == {"day_totals_off_from_the_generators_sums": 1}


def test_an_event_held_that_the_policy_would_not_hold_is_found(sent):
    log, _ = sent
    held = Event.objects.get(event_id="c")
    QuarantinedEvent.objects.create(
        event=held, day_total_id=held.day_total_id, held_at=held.arrival_time
    )

    found = _check(log)

    assert found["held_against_the_policy"] == 1


def test_a_rejection_of_a_valid_event_is_found(sent):
    log, _ = sent
    # As if the server had answered that "a" (index 0) was invalid.
    log.answers[0].body = {**log.answers[0].body, "accepted": 1, "rejected": 2,
                           "errors": [*log.answers[0].body["errors"], {"index": 0}]}  # fmt: skip

    found = _check(log)

    assert found["rejections_of_valid_events"] == 1


def test_an_event_on_the_wrong_day_is_found(sent):
    log, _ = sent
    moved = Event.objects.get(event_id="b")
    today = Event.objects.get(event_id="a").day_total_id
    Event.objects.filter(pk=moved.pk).update(day_total_id=today)

    assert _check(log)["acked_events_on_the_wrong_metric_or_day"] == 1
