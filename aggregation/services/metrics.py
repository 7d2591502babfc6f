"""Edits to a metric's settings (PATCH /api/metrics/{name}/ and the admin's form)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aggregation.models import Metric

# The settings an operator may change through the API; the name and the default flag stay.
EDITABLE_FIELDS = (
    "description",
    "unit",
    "allowed_lateness_seconds",
    "too_late_policy",
    "raw_retention_days",
)


def metric_update(*, metric: Metric, changes: dict[str, Any]) -> Metric:
    """Apply already-validated changes (keys among EDITABLE_FIELDS) and save only them."""
    updated: list[str] = []
    for name, value in changes.items():
        if name == "allowed_lateness_seconds":
            metric.allowed_lateness = dt.timedelta(seconds=value)
            updated.append("allowed_lateness")
        else:
            setattr(metric, name, value)
            updated.append(name)
    if updated:
        metric.save(update_fields=updated)
    return metric
