"""GET /metrics: the Prometheus text format.

Every value is read from PostgreSQL (or the shared Redis cache) at scrape time, not kept in
process memory: each gunicorn worker answering a scrape gives the same figures, and a
restart loses nothing. Counters are derived from durable rows (the ingest batches' counts,
the snapshot job log), so they only grow, as Prometheus expects of a counter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.db.models import Count, Sum
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from aggregation.selectors import reconcile_last
from alerts.models import Alert, AlertCondition
from common.throttling import ingest_throttled_total
from events.models import IngestBatch
from events.selectors.events import backlog_get
from snapshots.models import SnapshotRun
from snapshots.selectors.history import snapshot_run_last_completed
from web.selectors import workers_alive

EVENT_OUTCOMES = {
    "accepted": "accepted_count",
    "duplicate": "duplicate_count",
    "conflict": "conflict_count",
    "rejected": "rejected_count",
}


class DatabaseCollector:
    """A prometheus-client collector whose values come from the database on each collect."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from self._backlog()
        yield from self._snapshots()
        yield from self._events()
        yield from self._operations()

    def _backlog(self) -> Iterator[Metric]:
        backlog = backlog_get()
        yield GaugeMetricFamily(
            "snapagg_backlog_events", "Accepted events not applied yet.", value=backlog.events
        )
        oldest = backlog.oldest_received_at
        yield GaugeMetricFamily(
            "snapagg_oldest_unapplied_seconds",
            "Age of the oldest unapplied batch (0 when there is none).",
            value=(self.now - oldest).total_seconds() if oldest else 0.0,
        )

    def _snapshots(self) -> Iterator[Metric]:
        last = snapshot_run_last_completed()
        age = GaugeMetricFamily(
            "snapagg_last_snapshot_run_age_seconds",
            "Seconds since the last successful snapshot run started (absent before the first).",
        )
        if last is not None:
            age.add_metric([], (self.now - last.started_at).total_seconds())
        yield age
        runs = CounterMetricFamily(
            "snapagg_snapshot_runs", "Snapshot runs by outcome.", labels=["outcome"]
        )
        counts = dict(SnapshotRun.objects.values_list("outcome").annotate(n=Count("id")).order_by())
        for outcome in ("ok", "skipped", "failed"):
            runs.add_metric([outcome], counts.get(outcome, 0))
        yield runs

    def _events(self) -> Iterator[Metric]:
        sums = IngestBatch.objects.aggregate(
            **{outcome: Sum(column) for outcome, column in EVENT_OUTCOMES.items()}
        )
        events = CounterMetricFamily(
            "snapagg_events", "Events received, by outcome.", labels=["outcome"]
        )
        for outcome in EVENT_OUTCOMES:
            events.add_metric([outcome], sums[outcome] or 0)
        yield events
        yield CounterMetricFamily(
            "snapagg_ingest_throttled",
            "Ingest requests refused by the rate limit (429).",
            value=ingest_throttled_total(),
        )

    def _operations(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "snapagg_workers",
            "Workers with a fresh heartbeat.",
            value=len(workers_alive(now=self.now)),
        )
        run = reconcile_last()
        drift_days = len({(item["metric"], item["day"]) for item in run.drift}) if run else 0
        yield GaugeMetricFamily(
            "snapagg_reconcile_drift_days",
            "Days with drift in the latest reconcile run.",
            value=drift_days,
        )
        alerts = CounterMetricFamily("snapagg_alerts", "Alerts raised, by kind.", labels=["kind"])
        for kind, n in Alert.objects.values_list("kind").annotate(n=Count("id")).order_by("kind"):
            alerts.add_metric([kind], n)
        yield alerts
        active = GaugeMetricFamily(
            "snapagg_alert_conditions_active",
            "1 while a checked condition (backlog_stale, snapshots_overdue, ...) holds.",
            labels=["condition"],
        )
        for key, is_active in AlertCondition.objects.values_list("key", "active").order_by("key"):
            active.add_metric([key], 1 if is_active else 0)
        yield active


class JsonErrorsNegotiation(BaseContentNegotiation):
    """Errors (401, 403) answer JSON like the other APIs, whatever Prometheus accepts."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PrometheusMetricsApi(APIView):
    """Same authentication and permissions as the other GET APIs."""

    content_negotiation_class = JsonErrorsNegotiation
    schema = None  # not part of the JSON API schema

    def get(self, request: Request) -> HttpResponse:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DatabaseCollector(timezone.now()))
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
