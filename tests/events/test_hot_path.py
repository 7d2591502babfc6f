"""The ingest and apply hot path: a fixed number of statements per batch whatever its size,
no lock waits between ingest and apply, and the branches the fast path added."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum

from aggregation.models import Contribution, DayTotal
from events.models import Conflict, IngestBatch
from events.services.apply import batch_apply, batches_apply_coalesced
from tests.conftest import T0, event
from tests.locks import day_totals_locked_elsewhere

DAY = T0.date()


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    """Every statement sent to PostgreSQL, through Django's cursors or psycopg's own, but
    the savepoints of the test's own transaction."""
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def counting(cursor, query, *args, **kwargs):
        if "SAVEPOINT" not in str(query):
            sent.append(str(query))
        return original(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = counting
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = original


def batch(prefix: str, size: int) -> list[dict]:
    # Three days per batch, as a real feed has.
    return [event(f"{prefix}-{i}", T0 - dt.timedelta(days=i % 3), "1.25") for i in range(size)]


@pytest.mark.django_db
def test_ingest_and_apply_send_as_many_statements_for_1000_events_as_for_3(pipeline):
    pipeline.post(batch("warm", 3), at=T0)  # the three days exist from here on

    with statements_sent() as small_ingest:
        small = pipeline.ingest(batch("small", 3), at=T0)
    with statements_sent() as large_ingest:
        large = pipeline.ingest(batch("large", 1000), at=T0)
    with statements_sent() as small_apply:
        batch_apply(batch_id=small.batch_id, now=T0)
    with statements_sent() as large_apply:
        batch_apply(batch_id=large.batch_id, now=T0)

    # One statement stores the batch row and its events (the metric table is kept per
    # process once the warm-up read it); claim, the day totals' locks, contributions + totals.
    assert len(large_ingest) == len(small_ingest) == 1
    assert len(large_apply) == len(small_apply) == 3
    assert DayTotal.objects.get(day=DAY).event_count == 1 + 1 + 334


@pytest.mark.django_db
def test_a_batch_over_many_days_is_applied_like_one_over_a_few(pipeline):
    """A backfill batch adds one contribution per (day, source), all grouped, written and
    added up by the database: as many statements as a batch of three days, and the totals,
    the sources and the ledger agree."""
    spread = [
        {**event(f"wide-{i}", T0 - dt.timedelta(days=i % 400), "0.50"), "source": f"s{i % 2}"}
        for i in range(1000)
    ]
    few = pipeline.ingest(batch("few", 1000), at=T0)
    wide = pipeline.ingest(spread, at=T0)

    with statements_sent() as few_apply:
        batch_apply(batch_id=few.batch_id, now=T0)
    with statements_sent() as wide_apply:
        result = batch_apply(batch_id=wide.batch_id, now=T0)

    assert len(wide_apply) == len(few_apply) == 3
    assert (result.events, result.day_totals) == (1000, 400)
    contributions = Contribution.objects.filter(batch_id=wide.batch_id)
    assert contributions.count() == 400  # day i and i + 400 share a source (i and 400 even)
    assert contributions.aggregate(total=Sum("value"))["total"] == Decimal("500")
    for day_total in DayTotal.objects.filter(contributions__batch_id=wide.batch_id):
        sources = day_total.sources.aggregate(total=Sum("value"), events=Sum("event_count"))
        assert (sources["total"], sources["events"]) == (day_total.value, day_total.event_count)


@pytest.mark.django_db
def test_a_coalescing_apply_sends_as_many_statements_for_20_batches_as_for_1(pipeline):
    pipeline.post(batch("warm", 3), at=T0)
    alone = pipeline.ingest(batch("alone", 100), at=T0)
    with statements_sent() as one_batch:
        batches_apply_coalesced(
            batch_id=alone.batch_id, now=T0, max_batches=100, max_events=100_000
        )
    many = [pipeline.ingest(batch(f"many{n}", 100), at=T0).batch_id for n in range(20)]

    with statements_sent() as twenty_batches:
        result = batches_apply_coalesced(
            batch_id=many[0], now=T0, max_batches=100, max_events=100_000
        )

    assert result.batch_ids == tuple(many)
    # claim, claim the others, the day totals' locks, contributions + totals.
    assert len(twenty_batches) == len(one_batch) == 4
    assert DayTotal.objects.get(day=DAY).revision == 1 + 1 + 1


@pytest.mark.django_db
def test_a_batch_of_duplicates_is_told_apart_without_a_lookup_per_event(pipeline):
    pipeline.post(batch("a", 500), at=T0)

    with statements_sent() as sent:
        again = pipeline.ingest(batch("a", 500), at=T0)

    assert (again.accepted, again.duplicates) == (0, 500)
    # The one of a new batch, then one lookup of the ids not inserted and the batch's counts.
    assert len(sent) == 3
    assert IngestBatch.objects.get(pk=again.batch_id).accepted_count == 0


@pytest.mark.django_db
def test_a_conflict_on_a_new_day_creates_no_day_total(pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)

    result = pipeline.post([event("a", T0 - dt.timedelta(days=5), "1")], at=T0)

    assert result.conflicts == 1
    assert Conflict.objects.get().differing_fields == ["event_time"]
    assert list(DayTotal.objects.values_list("day", flat=True)) == [DAY]


@pytest.mark.django_db
def test_a_retried_negative_zero_is_a_duplicate_not_a_conflict(pipeline):
    pipeline.post([event("z", T0, "-0.0")], at=T0)

    again = pipeline.post([event("z", T0, "0")], at=T0)

    assert (again.duplicates, again.conflicts) == (1, 0)
    assert pipeline.total(DAY).value == Decimal(0)


@pytest.mark.django_db
def test_events_arriving_later_than_received_keep_their_own_arrival_time(pipeline):
    replayed = T0 - dt.timedelta(hours=2)

    pipeline.post([event("a", replayed, "1", arrival_time=replayed), event("b", T0, "2")], at=T0)

    from events.models import Event

    arrivals = dict(Event.objects.values_list("event_id", "arrival_time"))
    assert arrivals == {"a": replayed, "b": T0}


@pytest.mark.django_db(transaction=True)
def test_ingest_commits_while_an_apply_holds_its_day_total(pipeline):
    """The apply (and the snapshot job) lock day totals FOR NO KEY UPDATE, which does not
    block the FOR KEY SHARE of an ingest's foreign-key check: with FOR UPDATE the ingest
    waited for the apply, and two of them could deadlock."""
    pipeline.post([event("first", T0)], at=T0)
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '5s'")
    try:
        with day_totals_locked_elsewhere(DayTotal.objects.values_list("pk", flat=True)):
            result = pipeline.ingest([event("second", T0)], at=T0)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert result.accepted == 1


def _day_total_updates() -> tuple[int, int]:
    """(updates, HOT updates) of day totals in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'aggregation_daytotal'"
        )
        return cursor.fetchone()


@pytest.mark.django_db
def test_applying_to_a_day_already_due_for_a_snapshot_updates_its_total_in_place(pipeline):
    pipeline.post([event("first", T0, "1")], at=T0)  # the day is now due for a snapshot
    second = pipeline.ingest([event("second", T0, "2")], at=T0)
    updates, hot = _day_total_updates()

    batch_apply(batch_id=second.batch_id, now=T0)

    # A HOT update: no new index entries, and the old version is pruned within its page
    # without waiting for autovacuum.
    assert _day_total_updates() == (updates + 1, hot + 1)
    assert pipeline.total(DAY).value == Decimal("3")


@pytest.mark.django_db
def test_the_batch_statement_stores_every_field_exactly(pipeline):
    """Columns travel as JSON text: ids and sources with quotes, backslashes, control and
    non-ASCII characters, the smallest and largest values, times with microseconds and an
    offset, all come back as sent."""
    odd = 'a "quoted" \\ back\\slash \t tab \u00e9\u4e2d\U0001f600 \u0001'
    sent = [
        event(odd, "2026-11-20T14:30:00.000001+05:30", "0.000001", source=odd),
        event("big", T0, "-99999999999999.999999", source=""),
        event("int", T0, 12),
        event("arrived", T0, "1.5", arrival_time=T0 - dt.timedelta(microseconds=7)),
    ]

    result = pipeline.ingest(sent, at=T0)

    from events.models import Event

    stored = {e.event_id: e for e in Event.objects.all()}
    assert result.accepted == 4
    assert stored[odd].source == odd
    assert stored[odd].value == Decimal("0.000001")
    assert stored[odd].event_time == dt.datetime(2026, 11, 20, 9, 0, 0, 1, tzinfo=dt.UTC)
    assert stored["big"].value == Decimal("-99999999999999.999999")
    assert stored["int"].value == Decimal(12)
    assert stored["arrived"].arrival_time == T0 - dt.timedelta(microseconds=7)
    assert stored["big"].arrival_time == T0
