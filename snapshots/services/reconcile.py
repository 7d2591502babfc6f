"""The reconcile over every layer: aggregation's checks fed with the counted events (events
layer) and the latest snapshots (this layer)."""

from __future__ import annotations

import datetime as dt

from aggregation.models import Metric, ReconcileRun
from aggregation.services.reconcile import reconcile_run
from alerts.models import AlertKind
from alerts.services.raising import alert_condition_clear, alert_condition_raise
from archive.selectors import event_sums_with_archive
from snapshots.selectors.history import latest_snapshots


def reconcile_execute(
    *,
    now: dt.datetime,
    trigger: str,
    metric: Metric | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
) -> ReconcileRun:
    """Recompute every day total in range from its events (archived ones by their verified
    manifests) and its contributions, check its latest snapshot, and record the outcome.
    Drift raises one alert until a reconcile of everything finds none."""
    run = reconcile_run(
        now=now,
        trigger=trigger,
        event_sums_read=event_sums_with_archive,
        latest_snapshots_read=latest_snapshots,
        metric=metric,
        day_from=day_from,
        day_to=day_to,
    )
    _drift_alert(run=run, now=now)
    return run


DRIFT_CONDITION = "reconcile_drift"


def _drift_alert(*, run: ReconcileRun, now: dt.datetime) -> None:
    if run.drift_count:
        days = sorted({f"{item['metric']} {item['day']}" for item in run.drift})
        shown = ", ".join(days[:5]) + (" ..." if len(days) > 5 else "")
        alert_condition_raise(
            key=DRIFT_CONDITION,
            kind=AlertKind.RECONCILE_DRIFT,
            detail=(
                f"Reconcile run {run.pk} found {run.drift_count} drifting figures over "
                f"{len(days)} days ({shown}); see the reconcile run in the admin."
            ),
            now=now,
        )
    elif run.metric_id is None and run.day_from is None and run.day_to is None:
        alert_condition_clear(
            key=DRIFT_CONDITION,
            kind=AlertKind.RECONCILE_DRIFT,
            detail=f"Recovered: reconcile run {run.pk} checked every day and found no drift.",
            now=now,
        )
