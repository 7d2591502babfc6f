"""When the database fails mid-request (session terminated, deadlock), the API answers a
JSON 503 with Retry-After: the transaction was rolled back and a retry is safe. Never 500."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError
from django.utils import timezone

from tests.conftest import event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(OperationalError("terminating connection"), id="django-wrapped"),
        pytest.param(psycopg.errors.DeadlockDetected("deadlock detected"), id="raw-driver"),
    ],
)
def test_a_database_failure_during_ingest_is_503_with_retry_after(api_client, monkeypatch, error):
    def fail(**kwargs):
        raise error

    monkeypatch.setattr("events.apis.events_ingest", fail)
    api_client.raise_request_exception = False

    response = api_client.post("/api/events/", event("a", timezone.now()), format="json")

    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    assert response["Retry-After"] == "1"


def test_a_database_failure_during_a_snapshot_run_is_503(operator_client, monkeypatch):
    def fail(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("web.apis.snapshot_run_execute", fail)
    operator_client.raise_request_exception = False

    response = operator_client.post("/api/snapshots/run/")

    assert response.status_code == 503
