"""Reads about snapshots: a day's history, what it showed at a time, and the job log."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from aggregation.models import DayTotal
from snapshots.models import RunOutcome, Snapshot, SnapshotRun


def day_snapshots(*, day_total: DayTotal) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(day_total=day_total).order_by("sequence")


def snapshot_get(*, day_total: DayTotal, sequence: int) -> Snapshot | None:
    return Snapshot.objects.filter(day_total=day_total, sequence=sequence).first()


def snapshot_as_of(*, day_total: DayTotal, as_of: dt.datetime) -> Snapshot | None:
    """What the day showed at `as_of`: its latest snapshot taken at or before then."""
    return (
        Snapshot.objects.filter(day_total=day_total, taken_at__lte=as_of)
        .order_by("-sequence")
        .first()
    )


def snapshot_run_last_completed() -> SnapshotRun | None:
    return SnapshotRun.objects.filter(outcome=RunOutcome.OK).order_by("-started_at", "-id").first()


def snapshot_runs_recent(*, limit: int = 20) -> QuerySet[SnapshotRun]:
    return SnapshotRun.objects.order_by("-started_at", "-id")[:limit]
