"""The reconcile over every layer: aggregation's checks fed with the counted events (events
layer) and the latest snapshots (this layer)."""

from __future__ import annotations

import datetime as dt

from aggregation.models import Metric, ReconcileRun
from aggregation.services.reconcile import reconcile_run
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
    manifests) and its contributions, check its latest snapshot, and record the outcome."""
    return reconcile_run(
        now=now,
        trigger=trigger,
        event_sums_read=event_sums_with_archive,
        latest_snapshots_read=latest_snapshots,
        metric=metric,
        day_from=day_from,
        day_to=day_to,
    )
