"""Ingest: durable storage, duplicates told from conflicts, per-event validation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aggregation import selectors as aggregation_selectors
from aggregation.models import DayTotal, ReportingTimezone
from events.models import BatchStatus, Conflict, Event, IngestBatch
from tests.conftest import T0, event

pytestmark = pytest.mark.django_db
DAY = T0.date()


def test_valid_events_are_stored_in_one_received_batch(pipeline):
    result = pipeline.ingest([event("a", T0, "1.5"), event("b", T0, 2)], at=T0)

    assert (result.accepted, result.duplicates, result.conflicts, result.rejected) == (2, 0, 0, 0)
    batch = IngestBatch.objects.get()
    assert batch.status == BatchStatus.RECEIVED
    assert batch.accepted_count == 2
    assert sorted(Event.objects.values_list("event_id", "value")) == [
        ("a", Decimal("1.5")),
        ("b", Decimal("2")),
    ]


def test_arrival_time_defaults_to_the_receive_time(pipeline):
    pipeline.ingest([event("a", T0 - dt.timedelta(hours=1))], at=T0)

    assert Event.objects.get().arrival_time == T0


def test_duplicate_event_does_not_change_total(pipeline):
    pipeline.post([event("a", T0, "10")], at=T0)

    again = pipeline.post([event("a", T0, "10.000")], at=T0 + dt.timedelta(minutes=1))

    assert (again.accepted, again.duplicates, again.conflicts) == (0, 1, 0)
    total = pipeline.total(DAY)
    assert (total.value, total.event_count, total.revision) == (Decimal("10"), 1, 1)


def test_replayed_batch_changes_no_total(pipeline):
    batch = [event(f"e{i}", T0, i) for i in range(1, 6)]
    pipeline.post(batch, at=T0)

    replay = pipeline.post(batch, at=T0 + dt.timedelta(hours=1))

    assert (replay.accepted, replay.duplicates) == (0, 5)
    assert pipeline.total(DAY).value == Decimal("15")
    assert Event.objects.count() == 5


def test_same_id_with_other_value_is_recorded_as_conflict_and_not_counted(pipeline):
    pipeline.post([event("a", T0, "10")], at=T0)

    result = pipeline.post([event("a", T0, "99")], at=T0 + dt.timedelta(minutes=1))

    assert (result.accepted, result.duplicates, result.conflicts) == (0, 0, 1)
    conflict = Conflict.objects.get()
    assert conflict.event_id == "a"
    assert conflict.differing_fields == ["value"]
    assert conflict.stored["value"] == "10.000000"
    assert conflict.incoming["value"] == "99.000000"
    assert pipeline.total(DAY).value == Decimal("10")


def test_repeats_inside_one_batch_count_once_and_conflicts_are_recorded(pipeline):
    result = pipeline.post(
        [event("a", T0, "1"), event("a", T0, "1"), event("a", T0, "2"), event("b", T0, "5")],
        at=T0,
    )

    assert (result.accepted, result.duplicates, result.conflicts) == (2, 1, 1)
    assert pipeline.total(DAY).value == Decimal("6")
    assert Conflict.objects.get().incoming["value"] == "2.000000"


def test_a_different_arrival_time_alone_is_a_harmless_duplicate(pipeline):
    pipeline.post([event("a", T0, "1", arrival_time=T0)], at=T0)

    again = pipeline.post([event("a", T0, "1", arrival_time=T0 + dt.timedelta(hours=1))], at=T0)

    assert (again.duplicates, again.conflicts) == (1, 0)


BAD_EVENTS = [
    pytest.param({"event_time": T0.isoformat(), "value": 1}, "event_id", id="missing-id"),
    pytest.param(event("", T0), "event_id", id="empty-id"),
    pytest.param(event("x" * 129, T0), "event_id", id="id-too-long"),
    pytest.param(event("a\x00b", T0), "event_id", id="nul-in-id"),
    pytest.param(event(123, T0), "event_id", id="numeric-id"),
    pytest.param(event("a", "2026-11-20T10:00:00"), "event_time", id="naive-time"),
    pytest.param(event("a", "yesterday"), "event_time", id="not-a-time"),
    pytest.param(event("a", "1900-01-01T00:00:00Z"), "event_time", id="absurd-year"),
    pytest.param(event("a", T0 + dt.timedelta(days=2)), "event_time", id="far-future"),
    pytest.param({"event_id": "a", "event_time": T0.isoformat()}, "value", id="missing-value"),
    pytest.param(event("a", T0, "NaN"), "value", id="nan-string"),
    pytest.param(event("a", T0, "Infinity"), "value", id="infinity-string"),
    pytest.param(event("a", T0, "1.1234567"), "value", id="seven-decimals"),
    pytest.param(event("a", T0, True), "value", id="boolean"),
    pytest.param(event("a", T0, {"amount": 1}), "value", id="object"),
    pytest.param(event("a", T0, None), "value", id="null"),
    pytest.param(event("a", T0, "1e20"), "value", id="beyond-column-range"),
    pytest.param(event("a", T0, "twelve"), "value", id="words"),
    pytest.param(event("a", T0, metric="nope"), "metric", id="unknown-metric"),
    pytest.param(event("a", T0, source="s" * 65), "source", id="source-too-long"),
    pytest.param(event("a", T0, source="a\x00"), "source", id="nul-in-source"),
    pytest.param(event("a", T0, colour="red"), "colour", id="unknown-field"),
    pytest.param(
        event("a", T0, arrival_time=T0 - dt.timedelta(days=1)), "arrival_time", id="arrival-first"
    ),
    pytest.param(event("a", T0, arrival_time="soon"), "arrival_time", id="bad-arrival"),
    pytest.param("just a string", "event", id="not-an-object"),
]


@pytest.mark.parametrize(("bad", "field"), BAD_EVENTS)
def test_invalid_event_is_rejected_by_field_and_valid_ones_are_kept(pipeline, bad, field):
    result = pipeline.post([event("good-1", T0, "3"), bad, event("good-2", T0, "4")], at=T0)

    assert (result.accepted, result.rejected) == (2, 1)
    [error] = result.errors
    assert error["index"] == 1
    assert error["field"] == field
    assert error["detail"]
    assert pipeline.total(DAY).value == Decimal("7")


def test_exact_values_with_trailing_zeros_beyond_six_places_are_accepted(pipeline):
    result = pipeline.post([event("a", T0, "1.5000000000")], at=T0)

    assert result.accepted == 1
    assert Event.objects.get().value == Decimal("1.5")


def test_sql_looking_ids_are_stored_verbatim(pipeline):
    evil = "a'); DROP TABLE events_event; --"

    pipeline.post([event(evil, T0, source="web' OR 1=1")], at=T0)

    stored = Event.objects.get()
    assert (stored.event_id, stored.source) == (evil, "web' OR 1=1")


def test_nothing_is_stored_when_every_event_is_invalid(pipeline):
    result = pipeline.ingest([event("a", "bad"), event("b", T0, "NaN")], at=T0)

    assert (result.accepted, result.rejected, result.batch_id) == (0, 2, None)
    assert not IngestBatch.objects.exists()


def test_a_batch_of_only_duplicates_needs_no_apply(pipeline):
    pipeline.post([event("a", T0)], at=T0)

    result = pipeline.ingest([event("a", T0)], at=T0)

    assert IngestBatch.objects.get(pk=result.batch_id).status == BatchStatus.APPLIED


@pytest.fixture
def paris_reporting_zone():
    ReportingTimezone.objects.filter(id=1).update(name="Europe/Paris")
    aggregation_selectors._stored_zone.cache_clear()
    yield
    aggregation_selectors._stored_zone.cache_clear()


@pytest.mark.usefixtures("paris_reporting_zone")
def test_the_day_is_the_calendar_day_in_the_reporting_zone(pipeline):
    # 23:30 UTC on 20 Nov is 00:30 on 21 Nov in Paris.
    late_evening_utc = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)

    pipeline.post([event("a", late_evening_utc)], at=late_evening_utc)

    day_total = DayTotal.objects.get()
    assert day_total.day == dt.date(2026, 11, 21)
    assert day_total.day_end == dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)
