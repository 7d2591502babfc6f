"""The anomaly badge on the dashboard, the day page and the snapshot row; the staff alerts
page with its deliveries; the admin's anomaly filter."""

from __future__ import annotations

import datetime as dt

import pytest

from alerts.models import Alert, AlertDelivery, AlertKind, DeliveryStatus
from alerts.services.raising import alert_raise
from tests.alerts.test_anomaly import DAY0, _late_corrections
from tests.conftest import T0
from tests.factories import MetricFactory, UserFactory

pytestmark = pytest.mark.django_db
BIG = dt.date(2026, 11, 15)


@pytest.fixture
def flagged(pipeline):
    MetricFactory(name="revenue", allowed_lateness=dt.timedelta(days=60))
    at = dt.datetime(2026, 11, 20, 0, 30, tzinfo=dt.UTC)
    usual = {DAY0 + dt.timedelta(days=n): v for n, v in enumerate(["0.9", "1", "1.1"] * 4)}
    _late_corrections(pipeline, "revenue", usual, at)
    _late_corrections(pipeline, "revenue", {BIG: "10"}, at + dt.timedelta(hours=3))
    return Alert.objects.get(kind=AlertKind.ANOMALY)


@pytest.fixture
def staff(db):
    return UserFactory(username="staff-alerts", is_staff=True)


def test_the_badge_shows_on_the_dashboard_day_page_and_snapshot_row(client, staff, flagged):
    client.force_login(staff)
    dashboard = client.get(
        "/", {"metric": "revenue", "day_from": "2026-11-01", "day_to": "2026-11-16"}
    ).content.decode()
    assert dashboard.count("unusual correction") == 1
    day = client.get(f"/days/revenue/{BIG}/").content.decode()
    assert "badge-anomaly" in day
    assert day.count("unusual correction") == 2  # the headline note and the snapshot row
    usual_day = client.get(f"/days/revenue/{DAY0}/").content.decode()
    assert "unusual correction" not in usual_day


def test_the_alerts_page_lists_alerts_newest_first_with_deliveries(client, staff, settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    old = alert_raise(kind=AlertKind.BACKLOG_STALE, detail="The backlog is old.", now=T0)
    alert_raise(kind=AlertKind.RESTATEMENT, detail="A day moved.", now=T0 + dt.timedelta(hours=1))
    AlertDelivery.objects.filter(alert=old).update(
        status=DeliveryStatus.FAILED, attempts=8, last_error="ConnectError: refused"
    )
    client.force_login(staff)
    page = client.get("/alerts/").content.decode()
    assert page.index("A day moved.") < page.index("The backlog is old.")
    assert "webhook: Failed (gave up) after 8 attempts (ConnectError: refused)" in page
    only = client.get("/alerts/", {"kind": "restatement"}).content.decode()
    assert "The backlog is old." not in only


def test_the_alerts_page_is_for_staff(client):
    client.force_login(UserFactory(username="reader"))
    assert client.get("/alerts/").status_code == 403


def test_the_admin_filters_snapshots_by_anomaly(admin_client, flagged):
    flagged_page = admin_client.get("/admin/snapshots/snapshot/", {"anomaly": "yes"})
    assert flagged_page.context["cl"].result_count == 1
    other = admin_client.get("/admin/snapshots/snapshot/", {"anomaly": "no"})
    assert other.context["cl"].result_count > 1
