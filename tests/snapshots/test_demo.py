"""The demo: a seeded event log, loaded through replay, that tells the late-data story."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum

from aggregation.calendar import DayStatus
from aggregation.models import DayTotal, Metric, ReconcileRun
from events.models import Conflict, IngestBatch, QuarantinedEvent, QuarantineStatus
from snapshots import demo
from snapshots.management.commands import demo_setup
from snapshots.models import Snapshot, SnapshotReason

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)


def _write(tmp_path, name: str, **options) -> bytes:
    path = tmp_path / name
    call_command("demo_data", output=path, stdout=StringIO(), **options)
    return path.read_bytes()


def test_demo_data_writes_the_same_log_for_the_same_seed(tmp_path):
    first = _write(tmp_path, "a.csv", days=10, seed=3, until=NOW.isoformat())
    second = _write(tmp_path, "b.csv", days=10, seed=3, until=NOW.isoformat())
    other_seed = _write(tmp_path, "c.csv", days=10, seed=4, until=NOW.isoformat())

    assert first == second
    assert other_seed != first
    header, *rows = first.decode().splitlines()
    assert header == "event_id,event_time,arrival_time,value,metric,source"
    assert {row.split(",")[4] for row in rows} == {"orders", "signups"}
    assert {row.rsplit(",", 1)[1] for row in rows} == {"web", "mobile", "partner", "store", "email"}
    arrivals = [dt.datetime.fromisoformat(row.split(",")[2]) for row in rows]
    assert arrivals == sorted(arrivals)
    assert max(arrivals) <= NOW


@pytest.fixture
def demo_files(tmp_path, monkeypatch, settings):
    settings.VAR_DIR = tmp_path
    monkeypatch.setattr(demo_setup, "DEMO_LOG", tmp_path / "demo-events.csv")


@pytest.mark.usefixtures("demo_files")
def test_demo_setup_loads_a_history_that_tells_the_late_data_story(settings):
    settings.ANOMALY_MIN_HISTORY = 3  # 12 days: the flash sale comes after 3 days of history
    with time_machine.travel(NOW, tick=False):
        call_command("demo_setup", days=12, stdout=StringIO(), stderr=StringIO())
        snapshots_loaded = Snapshot.objects.count()
        call_command("demo_setup", days=12, stdout=StringIO(), stderr=StringIO())

    metric = Metric.objects.get(name="orders")
    assert (metric.is_default, metric.unit) == (True, "EUR")  # events naming no metric count here
    assert not Metric.objects.filter(name="default").exists()
    orders = DayTotal.objects.filter(metric=metric).select_related("metric")
    statuses = {day_total.status_at(NOW) for day_total in orders}
    assert statuses == {DayStatus.LIVE, DayStatus.PROVISIONAL, DayStatus.FINAL}
    reasons = set(Snapshot.objects.values_list("reason", flat=True))
    assert {SnapshotReason.LATE_DATA, SnapshotReason.FINAL, SnapshotReason.RESTATEMENT} <= reasons
    assert orders.filter(restated=True).count() == 1
    provisional = [d for d in orders if d.status_at(NOW) == DayStatus.PROVISIONAL]
    assert Snapshot.objects.filter(day_total__in=provisional, reason="late_data").exists()
    held = QuarantinedEvent.objects.filter(status=QuarantineStatus.HELD)
    assert held.count() == 4
    assert set(held.values_list("day_total__metric__name", flat=True)) == {"signups"}
    assert Conflict.objects.count() == 4
    assert IngestBatch.objects.aggregate(d=Sum("duplicate_count"))["d"] > 0
    assert Snapshot.objects.count() == snapshots_loaded  # the second run loaded nothing
    flash_sale = NOW.date() - dt.timedelta(days=demo.FLASH_SALE_DAYS_AGO)
    flagged = Snapshot.objects.filter(anomaly__isnull=False)
    assert [(s.metric.name, s.day) for s in flagged] == [("orders", flash_sale)]
    reconcile = ReconcileRun.objects.get()  # the demo checks itself, once
    assert reconcile.days_checked == DayTotal.objects.count()
    assert reconcile.drift_count == 0


def test_the_demo_keeps_a_default_metric_already_in_use():
    """Orders get a metric of their own when the default one already counted something."""
    default = Metric.objects.get(is_default=True)
    DayTotal.objects.create(metric=default, day=NOW.date(), day_end=NOW + dt.timedelta(hours=14))
    demo.demo_metrics_ensure()
    default.refresh_from_db()
    assert default.name == "default"
    orders = Metric.objects.get(name="orders")
    assert (orders.is_default, orders.unit) == (False, "EUR")
