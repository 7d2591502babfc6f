"""The anomaly rule on late corrections: on a hand-made history, then through the real
snapshot job (flag stored in the snapshot, an anomaly alert, the per-metric switch)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from alerts.models import Alert, AlertKind
from snapshots.models import Snapshot, SnapshotReason
from snapshots.services.anomaly import AnomalyRule, anomaly_score, history_ratios
from tests.conftest import event
from tests.factories import MetricFactory

RULE = AnomalyRule(threshold=Decimal("3.5"), min_history=10)
# Twelve usual corrections of 0.9%, 1.0% or 1.1% of the day's value.
USUAL = [Decimal(x) for x in ("0.009", "0.010", "0.011", "0.010") * 3]


def score(change: str, value: str, history: list[Decimal]) -> dict | None:
    return anomaly_score(change=Decimal(change), value=Decimal(value), history=history, rule=RULE)


def test_no_flag_before_enough_history():
    assert score("1000", "1100", USUAL[:9]) is None  # 10x the day: still not enough history


def test_a_correction_ten_times_the_usual_is_flagged():
    flag = score("10", "110", USUAL)  # 10% of the 100 it had
    assert flag is not None
    assert Decimal(flag["score"]) > Decimal(flag["threshold"]) == Decimal("3.5")
    assert "10.00%" in flag["detail"]
    assert "1.00%" in flag["detail"]  # the usual (median)


@pytest.mark.parametrize(("change", "value"), [("1", "101"), ("1.1", "101.1"), ("-1", "99")])
def test_a_usual_correction_is_not_flagged(change, value):
    assert score(change, value, USUAL) is None


def test_a_smaller_than_usual_correction_is_not_flagged():
    assert score("0.01", "100.01", USUAL) is None


def test_a_correction_of_a_day_that_had_nothing_is_not_scored():
    assert score("500", "500", USUAL) is None


def test_history_ratios_skip_unmeasurable_corrections():
    pairs = [(Decimal("1"), Decimal("101")), (Decimal("5"), Decimal("5"))]
    assert history_ratios(pairs) == [Decimal("0.01")]


# --- Through the snapshot job -----------------------------------------------------------

DAY0 = dt.date(2026, 11, 1)


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


def _late_corrections(pipeline, metric: str, corrections: dict[dt.date, str], at: dt.datetime):
    """Each day gets 100 (first snapshot), then its correction arrives late (second)."""
    pipeline.post(
        [event(f"{metric}-{d}-base", _noon(d), "100", metric=metric) for d in corrections], at
    )
    pipeline.snapshot(at)
    later = at + dt.timedelta(hours=1)
    pipeline.post(
        [
            event(f"{metric}-{d}-late", _noon(d), value, metric=metric)
            for d, value in corrections.items()
        ],
        later,
    )
    pipeline.snapshot(later)


@pytest.mark.django_db
def test_snapshot_job_flags_a_ten_times_correction_and_alerts_once(pipeline):
    MetricFactory(name="revenue", allowed_lateness=dt.timedelta(days=60))
    history_days = {DAY0 + dt.timedelta(days=n): v for n, v in enumerate(["0.9", "1", "1.1"] * 4)}
    at = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)  # every day above has ended
    _late_corrections(pipeline, "revenue", history_days, at)
    # With no history before that run, none of its corrections is flagged.
    first_corrections = Snapshot.objects.filter(metric__name="revenue", sequence=2)
    assert first_corrections.count() == 12
    assert all(s.reason == SnapshotReason.LATE_DATA for s in first_corrections)
    assert not any(s.anomaly for s in first_corrections)

    big, usual = dt.date(2026, 11, 15), dt.date(2026, 11, 16)
    _late_corrections(pipeline, "revenue", {big: "10", usual: "1.05"}, at + dt.timedelta(hours=3))

    [flagged] = Snapshot.objects.filter(metric__name="revenue", anomaly__isnull=False)
    assert (flagged.day, flagged.sequence) == (big, 2)
    assert Decimal(flagged.anomaly["score"]) > Decimal(flagged.anomaly["threshold"])
    assert pipeline.snapshots(usual, "revenue")[1].anomaly is None
    [alert] = Alert.objects.filter(kind=AlertKind.ANOMALY)
    assert (alert.metric.name, alert.day, alert.sequence) == ("revenue", big, 2)
    assert flagged.anomaly["detail"] in alert.detail


@pytest.mark.django_db
def test_a_metric_can_switch_anomaly_flags_off(pipeline):
    MetricFactory(name="quiet", allowed_lateness=dt.timedelta(days=60), anomaly_detection=False)
    history_days = {DAY0 + dt.timedelta(days=n): "1" for n in range(12)}
    at = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)
    _late_corrections(pipeline, "quiet", history_days, at)
    _late_corrections(pipeline, "quiet", {dt.date(2026, 11, 15): "50"}, at + dt.timedelta(hours=3))
    assert not Snapshot.objects.filter(anomaly__isnull=False).exists()
    assert not Alert.objects.filter(kind=AlertKind.ANOMALY).exists()


@pytest.mark.django_db
def test_a_restatement_raises_a_restatement_alert(pipeline, api_client):
    day = dt.date(2026, 11, 2)
    at = dt.datetime(2026, 11, 3, 0, 10, tzinfo=dt.UTC)
    pipeline.post([event("r-1", _noon(day), "5")], at)
    pipeline.snapshot(at)
    final_at = dt.datetime(2026, 11, 4, 0, 10, tzinfo=dt.UTC)  # after the allowed day
    pipeline.snapshot(final_at)
    pipeline.post([event("r-2", _noon(day), "2")], final_at + dt.timedelta(minutes=5))
    pipeline.snapshot(final_at + dt.timedelta(minutes=10))
    [alert] = Alert.objects.filter(kind=AlertKind.RESTATEMENT)
    assert (alert.metric.name, alert.day, alert.sequence) == ("default", day, 3)
    assert "+2.00" in alert.detail
    body = api_client.get("/api/alerts/", {"kind": "restatement"}).json()
    assert body["count"] == 1
    assert body["results"][0] == {
        "id": alert.pk,
        "kind": "restatement",
        "created_at": "2026-11-04T00:20:00Z",
        "metric": "default",
        "day": "2026-11-02",
        "sequence": 3,
        "detail": alert.detail,
        "deliveries": [],
    }
    snapshots = api_client.get(f"/api/days/default/{day}/").json()["snapshots"]
    assert [s["anomaly"] for s in snapshots] == [None, None, None]


@pytest.mark.django_db
def test_the_history_is_read_once_per_metric_per_run_whatever_its_length(pipeline):
    """O(changed days): one bounded history query per metric with late corrections."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    MetricFactory(name="revenue", allowed_lateness=dt.timedelta(days=60))
    at = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)
    _late_corrections(
        pipeline, "revenue", {DAY0 + dt.timedelta(days=n): "1" for n in range(12)}, at
    )
    later = at + dt.timedelta(hours=3)
    days = {dt.date(2026, 11, 13) + dt.timedelta(days=n): "1" for n in range(4)}
    pipeline.post([event(f"q-{d}", _noon(d), "100", metric="revenue") for d in days], later)
    pipeline.snapshot(later)
    pipeline.post([event(f"q-{d}-late", _noon(d), "1", metric="revenue") for d in days], later)
    with CaptureQueriesContext(connection) as queries:
        run = pipeline.snapshot(later + dt.timedelta(minutes=1))
    assert run.days_snapshotted == 4
    history_reads = [
        q["sql"] for q in queries if "snapshots_snapshot" in q["sql"] and "reason = ANY" in q["sql"]
    ]
    assert len(history_reads) == 1


# --- Calibration: a metric with a routine large correction each day ----------------------


def _daily_file_history(pipeline, metric: str, days: list[dt.date], at: dt.datetime) -> None:
    """Each day: 100 on time, three rounds of stragglers of 1-3, then the partner's
    next-morning file of 45-60: many small corrections and one large one a day, as in the
    demo. Measured against every past correction (mostly stragglers), each file would be
    flagged."""
    pipeline.post([event(f"{metric}-{d}-base", _noon(d), "100", metric=metric) for d in days], at)
    pipeline.snapshot(at)
    rounds = [("1", "2", "3")] * 3 + [("45", "50", "55", "60")]
    for step, values in enumerate(rounds, start=1):
        later = at + dt.timedelta(hours=step)
        pipeline.post(
            [
                event(f"{metric}-{d}-{step}", _noon(d), values[n % len(values)], metric=metric)
                for n, d in enumerate(days)
            ],
            later,
        )
        pipeline.snapshot(later)


@pytest.mark.django_db
def test_a_routine_daily_file_is_not_flagged_but_an_outsized_one_is(pipeline):
    MetricFactory(name="sales", allowed_lateness=dt.timedelta(days=60))
    at = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)
    _daily_file_history(pipeline, "sales", [DAY0 + dt.timedelta(days=n) for n in range(12)], at)
    from aggregation.models import Metric
    from snapshots.selectors.history import late_corrections_recent

    metric = Metric.objects.get(name="sales")
    history = history_ratios(late_corrections_recent(metric_id=metric.pk, limit=100))
    assert len(history) == 12  # one per day: its file, not its stragglers
    assert min(history) > Decimal("0.4")

    routine, outsized = dt.date(2026, 11, 15), dt.date(2026, 11, 16)
    later = at + dt.timedelta(hours=5)
    pipeline.post(
        [event(f"sales-{d}-base", _noon(d), "100", metric="sales") for d in (routine, outsized)],
        later,
    )
    pipeline.snapshot(later)
    files = {routine: "62", outsized: "300"}  # the routine file is a little above any before
    pipeline.post(
        [event(f"sales-{d}-file", _noon(d), v, metric="sales") for d, v in files.items()],
        later + dt.timedelta(hours=1),
    )
    pipeline.snapshot(later + dt.timedelta(hours=1))

    # (The history's own files were flagged when they first came: twelve days of nothing but
    # stragglers were the usual then.)
    flagged = Snapshot.objects.filter(
        metric__name="sales", anomaly__isnull=False, day__in=[routine, outsized]
    )
    assert [(s.day, s.sequence) for s in flagged] == [(outsized, 2)]
    assert "usually" in flagged[0].anomaly["detail"]
    assert pipeline.snapshots(routine, "sales")[1].anomaly is None
