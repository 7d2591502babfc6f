"""Reconcile: every total recomputed from events and contributions; drift is reported."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from aggregation.models import DayTotal, ReconcileRun, ReconcileTrigger
from aggregation.selectors import reconcile_last
from events.models import QuarantinedEvent
from events.services.quarantine import quarantine_accept, quarantine_reject
from snapshots.services.reconcile import reconcile_execute
from snapshots.tasks import reconcile_nightly
from tests.conftest import T0, event
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db
DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def history(pipeline):
    """Two days and two metrics: late events, held events (one accepted, one rejected, one
    still held), a conflict, and a batch not applied yet."""
    MetricFactory(name="held", too_late_policy="quarantine", allowed_lateness=HOUR)
    yesterday = T0 - dt.timedelta(days=1)
    pipeline.post([event("a", yesterday, "1.5"), event("b", T0, "2")], at=T0)
    pipeline.post([event("h1", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    pipeline.post([event("late", T0, "4")], at=DAY_END + HOUR)
    too_late = [event(f"t{n}", T0, str(n), metric="held") for n in (1, 2, 3)]
    pipeline.post(too_late, at=DAY_END + 2 * HOUR)
    pipeline.post([event("a", yesterday, "99")], at=DAY_END + 2 * HOUR)  # a conflict
    held = dict(QuarantinedEvent.objects.values_list("event__event_id", "pk"))
    quarantine_accept(event_pks=[held["t1"]], decided_by_id=None, reason="ok", now=DAY_END)
    quarantine_reject(event_pks=[held["t2"]], decided_by_id=None, reason="no", now=DAY_END)
    pipeline.snapshot(at=DAY_END + 3 * HOUR)
    pipeline.ingest([event("pending", T0, "1000")], at=DAY_END + 4 * HOUR)
    return pipeline


def _raw_sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _checks(run: ReconcileRun) -> set[tuple[str, str, str]]:
    return {(row["metric"], row["day"], row["check"]) for row in run.drift}


@pytest.mark.usefixtures("history")
def test_reconcile_finds_no_drift_in_a_consistent_history():
    out = StringIO()

    call_command("reconcile", stdout=out)

    run = reconcile_last()
    assert (run.drift_count, run.days_checked) == (0, DayTotal.objects.count())
    assert run.trigger == ReconcileTrigger.COMMAND
    assert "no drift" in out.getvalue()


def test_reconcile_reports_a_total_changed_behind_its_back_and_exits_non_zero(history):
    day_total = history.total(DAY)
    _raw_sql("UPDATE aggregation_daytotal SET value = value + 5 WHERE id = %s", [day_total.pk])
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("reconcile", stdout=out)

    assert failure.value.returncode == 1
    run = reconcile_last()
    assert _checks(run) == {
        ("default", DAY.isoformat(), "value = sum of its counted events"),
        ("default", DAY.isoformat(), "value = sum of its contributions"),
        ("default", DAY.isoformat(), "value = sum of its sources"),
    }
    assert ("11.00", "6.00") in {(row["stored"], row["recomputed"]) for row in run.drift}
    table = out.getvalue()
    assert "value = sum of its counted events" in table
    assert DAY.isoformat() in table


def test_reconcile_reports_an_event_changed_behind_its_back(history):
    _raw_sql("UPDATE events_event SET value = 7 WHERE event_id = %s", ["b"])

    run = reconcile_execute(now=DAY_END, trigger=ReconcileTrigger.COMMAND)

    assert _checks(run) == {("default", DAY.isoformat(), "value = sum of its counted events")}


def test_reconcile_reports_a_snapshot_its_contributions_no_longer_explain(history):
    day_total = history.total(DAY, "held")
    _raw_sql(
        "UPDATE aggregation_contribution SET value = value + 1 WHERE day_total_id = %s "
        "AND snapshot_sequence = 1",
        [day_total.pk],
    )

    run = reconcile_execute(now=DAY_END, trigger=ReconcileTrigger.COMMAND)

    assert _checks(run) == {
        ("held", DAY.isoformat(), "value = sum of its contributions"),
        ("held", DAY.isoformat(), "latest snapshot = contributions it covers"),
        ("held", DAY.isoformat(), "no-source slice value = its contributions"),
    }


def test_reconcile_reports_a_source_total_changed_behind_its_back(history):
    day_total = history.total(DAY)
    _raw_sql(
        "UPDATE aggregation_daysourcetotal SET value = value + 3, event_count = event_count + 1 "
        "WHERE day_total_id = %s",
        [day_total.pk],
    )

    run = reconcile_execute(now=DAY_END, trigger=ReconcileTrigger.COMMAND)

    assert _checks(run) == {
        ("default", DAY.isoformat(), "value = sum of its sources"),
        ("default", DAY.isoformat(), "no-source slice value = its contributions"),
        ("default", DAY.isoformat(), "no-source slice event count = its contributions"),
    }
    assert ("9.00", "6.00") in {(row["stored"], row["recomputed"]) for row in run.drift}


def test_reconcile_reports_a_source_total_missing_or_invented(pipeline):
    pipeline.post([event("w", T0, "2", source="web"), event("m", T0, "5", source="app")], at=T0)
    day_total = pipeline.total(DAY)
    _raw_sql(
        "UPDATE aggregation_daysourcetotal SET source = 'phantom' "
        "WHERE day_total_id = %s AND source = 'app'",
        [day_total.pk],
    )

    run = reconcile_execute(now=DAY_END, trigger=ReconcileTrigger.COMMAND)

    assert _checks(run) == {
        ("default", DAY.isoformat(), f"source {name!r} {figure} = its contributions")
        for name in ("app", "phantom")
        for figure in ("value", "event count")
    }


def test_reconcile_checks_only_the_metric_and_days_asked(history):
    _raw_sql("UPDATE aggregation_daytotal SET value = value + 5", [])

    run = reconcile_execute(
        now=DAY_END, trigger=ReconcileTrigger.COMMAND, metric=None, day_from=DAY, day_to=DAY
    )
    held_only = reconcile_execute(
        now=DAY_END,
        trigger=ReconcileTrigger.COMMAND,
        metric=history.total(DAY, "held").metric,
    )

    assert run.days_checked == 2
    assert {row["day"] for row in run.drift} == {DAY.isoformat()}
    assert {row["metric"] for row in held_only.drift} == {"held"}


def test_the_nightly_reconcile_is_scheduled_and_records_its_run(history):
    schedule = PeriodicTask.objects.get(task="snapshots.tasks.reconcile_nightly")

    drift = reconcile_nightly()

    assert drift == 0
    assert (schedule.crontab.hour, schedule.crontab.minute) == ("3", "30")
    assert reconcile_last().trigger == ReconcileTrigger.SCHEDULE


def test_reconcile_runs_are_shown_read_only_in_the_admin(history, client, operator):
    _raw_sql("UPDATE aggregation_daytotal SET value = value + 5", [])
    run = reconcile_execute(now=DAY_END, trigger=ReconcileTrigger.COMMAND)
    client.force_login(operator)

    changelist = client.get(reverse("admin:aggregation_reconcilerun_changelist"))
    page = client.get(reverse("admin:aggregation_reconcilerun_change", args=[run.pk]))
    posted = client.post(reverse("admin:aggregation_reconcilerun_change", args=[run.pk]), {})

    assert changelist.status_code == 200
    assert b"value = sum of its counted events" in page.content
    assert posted.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_reconcile_outside_a_transaction_reads_one_consistent_snapshot(pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    run = reconcile_execute(now=T0 + HOUR, trigger=ReconcileTrigger.COMMAND)

    assert (run.days_checked, run.drift_count) == (1, 0)
    assert not connection.in_atomic_block


def test_reconcile_adds_decimals_exactly(pipeline):
    # A hundred 0.1 add up to exactly 10: numeric arithmetic, never floats.
    pipeline.post([event(f"tenth-{n}", T0, "0.1") for n in range(100)], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    run = reconcile_execute(now=T0 + HOUR, trigger=ReconcileTrigger.COMMAND)

    assert pipeline.total(DAY).value == 10
    assert run.drift == []
