"""Each condition raises one alert, however often it is checked, then one recovery note:
a snapshot job that fails, a backlog no worker drains, reconcile drift, overdue runs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection

from aggregation.models import ReconcileTrigger
from alerts.models import Alert, AlertKind
from snapshots.services.reconcile import reconcile_execute
from snapshots.services.run import SnapshotInvariantError
from tests.conftest import T0, event
from web.alert_checks import alert_checks_run

pytestmark = [pytest.mark.django_db]
MINUTE = dt.timedelta(minutes=1)


def _sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def _alerts(kind: AlertKind) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind).order_by("created_at", "id"))


def test_a_failing_snapshot_job_alerts_once_then_recovers(pipeline):
    pipeline.post([event("f-1", T0, "3")], T0)
    pipeline.snapshot(T0)
    pipeline.post([event("f-2", T0, "4")], T0 + MINUTE)
    # Injected fault: the day total no longer matches the contributions that explain it.
    _sql("UPDATE aggregation_daytotal SET value = value + 1")
    for n in range(3):  # the job fails at every run, and the checks run in between
        with pytest.raises(SnapshotInvariantError):
            pipeline.snapshot(T0 + (n + 2) * MINUTE)
        alert_checks_run(now=T0 + (n + 2) * MINUTE)
    [alert] = _alerts(AlertKind.SNAPSHOT_RUN_FAILED)
    assert "SnapshotInvariantError" in alert.detail
    assert not alert.recovery

    _sql("UPDATE aggregation_daytotal SET value = value - 1")
    pipeline.snapshot(T0 + 10 * MINUTE)
    for n in range(3):
        alert_checks_run(now=T0 + (11 + n) * MINUTE)
    first, recovered = _alerts(AlertKind.SNAPSHOT_RUN_FAILED)
    assert first == alert
    assert recovered.recovery
    assert recovered.detail.startswith("Recovered:")


def test_a_backlog_no_worker_drains_alerts_once_then_recovers(pipeline, settings):
    settings.ALERT_BACKLOG_STALE_SECONDS = 600
    pipeline.ingest([event("b-1", T0, "1")], T0)  # stored, and no worker applies it
    for minutes in (1, 5, 9):  # not stale yet
        alert_checks_run(now=T0 + minutes * MINUTE)
    assert _alerts(AlertKind.BACKLOG_STALE) == []
    for minutes in (11, 12, 30, 60):
        alert_checks_run(now=T0 + minutes * MINUTE)
    [alert] = _alerts(AlertKind.BACKLOG_STALE)
    assert "1 events in 1 batches" in alert.detail
    assert alert.created_at == T0 + 11 * MINUTE

    pipeline.apply_pending(T0 + 61 * MINUTE)  # a worker is back
    for minutes in (62, 63):
        alert_checks_run(now=T0 + minutes * MINUTE)
    stale, recovered = _alerts(AlertKind.BACKLOG_STALE)
    assert stale == alert
    assert recovered.recovery
    assert recovered.created_at == T0 + 62 * MINUTE

    # Stale again later: a new alert, once.
    pipeline.ingest([event("b-2", T0, "1")], T0 + 70 * MINUTE)
    for minutes in (81, 82):
        alert_checks_run(now=T0 + minutes * MINUTE)
    assert len(_alerts(AlertKind.BACKLOG_STALE)) == 3


def test_drift_injected_with_sql_alerts_once_then_recovers(pipeline):
    pipeline.post([event("d-1", T0, "3")], T0)
    pipeline.snapshot(T0)
    _sql("UPDATE aggregation_daytotal SET value = value + 5")
    for n in range(3):
        run = reconcile_execute(now=T0 + n * MINUTE, trigger=ReconcileTrigger.COMMAND)
        assert run.drift_count
    [alert] = _alerts(AlertKind.RECONCILE_DRIFT)
    assert "default 2026-11-20" in alert.detail

    _sql("UPDATE aggregation_daytotal SET value = value - 5")
    for n in range(2):
        assert reconcile_execute(now=T0 + (5 + n) * MINUTE, trigger="command").drift_count == 0
    drift, recovered = _alerts(AlertKind.RECONCILE_DRIFT)
    assert drift == alert
    assert recovered.recovery


def test_snapshots_overdue_after_two_intervals_alerts_once(pipeline, settings):
    interval = settings.SNAPSHOT_INTERVAL_SECONDS  # the migration's schedule
    pipeline.snapshot(T0)
    alert_checks_run(now=T0 + dt.timedelta(seconds=2 * interval))
    assert _alerts(AlertKind.SNAPSHOTS_OVERDUE) == []
    for extra in (1, 60, 600):
        alert_checks_run(now=T0 + dt.timedelta(seconds=2 * interval + extra))
    [alert] = _alerts(AlertKind.SNAPSHOTS_OVERDUE)
    assert f"every {interval} s" in alert.detail

    later = T0 + dt.timedelta(seconds=2 * interval + 700)
    pipeline.snapshot(later)
    alert_checks_run(now=later + MINUTE)
    assert [a.recovery for a in _alerts(AlertKind.SNAPSHOTS_OVERDUE)] == [False, True]


def test_check_alerts_command_alerts_and_delivers_without_a_worker(pipeline, settings):
    """With every worker stopped, cron's `check_alerts --deliver` still tells someone."""
    from django.core.management import call_command

    from tests.alerts.receiver import Receiver

    receiver = Receiver().start()
    try:
        settings.ALERT_WEBHOOK_URL = receiver.url
        settings.ALERT_BACKLOG_STALE_SECONDS = 1
        pipeline.ingest([event("c-1", T0, "1")], T0)  # long ago: stale by the real clock
        call_command("check_alerts", "--deliver")
        call_command("check_alerts", "--deliver")
    finally:
        receiver.stop()
    [alert] = _alerts(AlertKind.BACKLOG_STALE)
    assert [json.loads(r.body)["id"] for r in receiver.requests] == [alert.pk]
