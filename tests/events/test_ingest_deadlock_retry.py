"""A batch aborted by a deadlock is stored by running it again; nothing of the aborted try
remains, and inside a caller's transaction the error is the caller's to handle."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, transaction

from events.models import Event, IngestBatch, IngestChannel
from events.services import ingest as ingest_service
from tests.conftest import T0, event


def _deadlocking_once(monkeypatch, times: int = 1) -> list[int]:
    """Make the batch statement fail as PostgreSQL's deadlock detector would, `times` times."""
    real = ingest_service._batch_store
    calls: list[int] = []

    def store(**kwargs):
        calls.append(1)
        result = real(**kwargs)  # the rows are written, then the transaction is aborted
        if len(calls) <= times:
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.errors.DeadlockDetected as cause:
                raise OperationalError("deadlock detected") from cause
        return result

    monkeypatch.setattr(ingest_service, "_batch_store", store)
    # A metric table kept from an earlier test would be re-read once more (one more call).
    monkeypatch.setattr(ingest_service, "_metric_table", None)
    return calls


def _ingest():
    return ingest_service.events_ingest(
        raw_events=[event("a", T0, "2"), event("b", T0, "3")],
        received_at=T0,
        channel=IngestChannel.API,
        enqueue=False,
    )


@pytest.mark.django_db(transaction=True)
def test_a_deadlocked_batch_is_run_again_and_stored_once(monkeypatch):
    calls = _deadlocking_once(monkeypatch)

    result = _ingest()

    assert len(calls) == 2
    assert (result.accepted, result.duplicates) == (2, 0)
    assert IngestBatch.objects.count() == 1
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_keeps_deadlocking_fails_after_its_attempts(monkeypatch):
    calls = _deadlocking_once(monkeypatch, times=ingest_service.DEADLOCK_ATTEMPTS)

    with pytest.raises(OperationalError):
        _ingest()

    assert len(calls) == ingest_service.DEADLOCK_ATTEMPTS
    assert not IngestBatch.objects.exists()
    assert not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_inside_a_callers_transaction_a_deadlock_is_not_retried(monkeypatch):
    calls = _deadlocking_once(monkeypatch)

    with pytest.raises(OperationalError), transaction.atomic():
        _ingest()

    assert len(calls) == 1
    assert not Event.objects.exists()
