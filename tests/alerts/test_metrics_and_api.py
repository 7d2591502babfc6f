"""GET /metrics (Prometheus text format, values read at scrape time) and GET /api/alerts/."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from alerts.models import AlertKind
from alerts.services.raising import alert_raise
from tests.conftest import PROJECT_ROOT, T0, event

pytestmark = pytest.mark.django_db

REQUIRED = {
    "snapagg_backlog_events",
    "snapagg_oldest_unapplied_seconds",
    "snapagg_last_snapshot_run_age_seconds",
    "snapagg_snapshot_runs",
    "snapagg_events",
    "snapagg_ingest_throttled",
    "snapagg_workers",
    "snapagg_reconcile_drift_days",
}


def scrape(client: APIClient) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.content.decode()))
    assert {family.name for family in families} >= REQUIRED
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def test_metrics_parse_and_move_when_events_are_ingested(api_client, pipeline):
    before = scrape(api_client)
    accepted = ("snapagg_events_total", (("outcome", "accepted"),))
    duplicate = ("snapagg_events_total", (("outcome", "duplicate"),))
    assert before[("snapagg_backlog_events", ())] == 0
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = {"events": [event(f"m-{n}", now - dt.timedelta(minutes=1), "2") for n in range(3)]}
    assert api_client.post("/api/events/", body, format="json").status_code == 202
    assert api_client.post("/api/events/", body, format="json").status_code == 202
    after = scrape(api_client)
    assert after[accepted] == before[accepted] + 3
    assert after[duplicate] == before[duplicate] + 3
    assert after[("snapagg_backlog_events", ())] == 3  # no worker in this test
    assert after[("snapagg_oldest_unapplied_seconds", ())] >= 0
    pipeline.apply_pending(now)
    pipeline.snapshot(now)
    applied = scrape(api_client)
    assert applied[("snapagg_backlog_events", ())] == 0
    assert applied[("snapagg_snapshot_runs_total", (("outcome", "ok"),))] == 1
    assert ("snapagg_last_snapshot_run_age_seconds", ()) in applied


def test_throttled_requests_are_counted(api_client, settings):
    settings.INGEST_RATE_LIMIT = (1, 3600)
    key = ("snapagg_ingest_throttled_total", ())
    before = scrape(api_client)[key]
    now = dt.datetime.now(dt.UTC)
    statuses = [
        api_client.post("/api/events/", event(f"t-{n}", now, "1"), format="json").status_code
        for n in range(3)
    ]
    assert statuses[1:] == [429, 429]
    assert scrape(api_client)[key] >= before + 2


def test_metrics_need_a_key(client):
    response = APIClient().get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_alerts_api_lists_newest_first_and_filters(api_client):
    old = alert_raise(kind=AlertKind.BACKLOG_STALE, detail="old", now=T0)
    new = alert_raise(kind=AlertKind.RESTATEMENT, detail="new", now=T0 + dt.timedelta(hours=1))
    body = api_client.get("/api/alerts/").json()
    assert [item["id"] for item in body["results"]] == [new.pk, old.pk]
    assert set(body) == {"count", "next", "previous", "results"}
    since = api_client.get("/api/alerts/", {"since": "2026-11-20T12:30:00+00:00"}).json()
    assert [item["id"] for item in since["results"]] == [new.pk]
    kind = api_client.get("/api/alerts/", {"kind": "backlog_stale"}).json()
    assert [item["id"] for item in kind["results"]] == [old.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"kind": "fire"}, "kind"),
        ({"since": "2026-11-20T12:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_alerts_api_refuses_bad_queries(api_client, query, field):
    response = api_client.get("/api/alerts/", query)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"
    assert response.json()["field"] == field


def test_alerts_api_needs_a_key():
    assert APIClient().get("/api/alerts/").status_code == 401


def test_json_logs_carry_the_ids():
    """LOG_FORMAT=json: one JSON object per line, with the extra ids as keys."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('snapagg.test').warning('applied', extra={'batch_id': 7, 'run_id': 3})"
    )
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "snapagg_project.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stderr.splitlines() if "applied" in line]
    record = json.loads(line)
    assert record["message"] == "applied"
    assert record["level"] == "WARNING"
    assert record["logger"] == "snapagg.test"
    assert (record["batch_id"], record["run_id"]) == (7, 3)


def test_the_shipped_rules_and_dashboard_use_series_that_exist(api_client):
    """docs/monitoring/ must not drift from what /metrics serves."""
    import re

    import yaml

    text = api_client.get("/metrics").content.decode()
    families = {family.name for family in text_string_to_metric_families(text)}
    served = families | {f"{name}_total" for name in families}
    monitoring = PROJECT_ROOT / "docs" / "monitoring"
    rules = yaml.safe_load((monitoring / "snapagg-rules.yml").read_text())
    expressions = [rule["expr"] for rule in rules["groups"][0]["rules"]]
    dashboard = json.loads((monitoring / "grafana-dashboard.json").read_text())
    expressions += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bsnapagg_\w+", expr)}
    assert used
    assert used <= served, used - served


def _settings_probe(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "snapagg_project.settings", **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def test_sentry_dsn_turns_on_sentry_with_django_and_celery():
    code = (
        "import sentry_sdk; client = sentry_sdk.get_client(); "
        "print(client.is_active(), sorted(client.integrations))"
    )
    on = _settings_probe(code, SENTRY_DSN="http://public@127.0.0.1:9/1")
    assert on.returncode == 0, on.stderr
    active, integrations = on.stdout.strip().split(" ", 1)
    assert active == "True"
    assert "'django'" in integrations
    assert "'celery'" in integrations
    off = _settings_probe(code)
    assert off.stdout.startswith("False")


def test_a_bad_anomaly_threshold_stops_startup():
    result = _settings_probe("", ANOMALY_THRESHOLD="high")
    assert result.returncode != 0
    assert "ANOMALY_THRESHOLD must be a number" in result.stderr
