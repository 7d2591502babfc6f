"""Concurrent writers take their locks in an order that cannot deadlock (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from aggregation.models import DayTotal
from aggregation.services.ledger import day_totals_lock
from events.models import IngestChannel
from events.services.ingest import events_ingest
from tests.conftest import T0, event

pytestmark = [pytest.mark.django_db(transaction=True)]


def _in_thread(target, *args) -> threading.Thread:
    def run() -> None:
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_ingest_is_not_blocked_by_an_apply_holding_the_day_total(pipeline):
    """An apply locks its day totals; an ingest inserting events of those days checks their
    foreign key (FOR KEY SHARE). With FOR UPDATE the two conflicted and, locking days in
    different orders, deadlocked (found by the fault run); FOR NO KEY UPDATE does not."""
    pipeline.ingest([event("first", T0)], at=T0)
    day_total = DayTotal.objects.get()
    holding, release = threading.Event(), threading.Event()

    def apply_holding_the_lock() -> None:
        with transaction.atomic():
            day_totals_lock([day_total.pk])
            holding.set()
            release.wait(30)

    holder = _in_thread(apply_holding_the_lock)
    try:
        assert holding.wait(30)
        with transaction.atomic():
            # Fail fast instead of waiting if the insert has to wait for the lock.
            connection.cursor().execute("SET LOCAL lock_timeout = '2s'")
            result = events_ingest(
                raw_events=[event("second", T0)],
                received_at=T0,
                channel=IngestChannel.API,
                enqueue=False,
            )
    finally:
        release.set()
        holder.join(30)

    assert result.accepted == 1
