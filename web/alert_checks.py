"""The periodic alert checks (beat: web.tasks.check_alerts). They live here because they
read what several layers record: the backlog (events), the snapshot job log (snapshots).

Each condition is raised once while it holds and cleared once (with a recovery note) when
it ends; a check that runs every minute therefore never repeats an alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django_celery_beat.models import PeriodicTask

from alerts.models import AlertKind
from alerts.services.raising import (
    alert_condition_clear,
    alert_condition_raise,
    deliveries_requeue_unsent,
)
from events.selectors.events import backlog_get
from snapshots.models import RunOutcome, SnapshotRun
from snapshots.services.run import RUN_FAILED_CONDITION

BACKLOG_CONDITION = "backlog_stale"
OVERDUE_CONDITION = "snapshots_overdue"
SNAPSHOT_TASK = "snapshots.tasks.run_snapshots"


@dataclass(frozen=True)
class ChecksResult:
    raised: int
    cleared: int
    requeued: int


def _toggle(*, holds: bool, key: str, kind: AlertKind, detail: str, now: dt.datetime) -> int:
    """+1 raised, -1 cleared, 0 nothing new."""
    if holds:
        return 1 if alert_condition_raise(key=key, kind=kind, detail=detail, now=now) else 0
    cleared = alert_condition_clear(key=key, kind=kind, detail=f"Recovered: {detail}", now=now)
    return -1 if cleared else 0


def backlog_stale_check(*, now: dt.datetime) -> int:
    backlog = backlog_get()
    oldest = backlog.oldest_received_at
    age = (now - oldest).total_seconds() if oldest else 0.0
    limit = settings.ALERT_BACKLOG_STALE_SECONDS
    if age > limit:
        detail = (
            f"The oldest unapplied event has waited {age:.0f} s (limit {limit} s); "
            f"{backlog.events} events in {backlog.batches} batches are not counted yet. "
            "Are the workers running?"
        )
    else:
        detail = f"the backlog drains again ({backlog.events} unapplied events)."
    return _toggle(
        holds=age > limit,
        key=BACKLOG_CONDITION,
        kind=AlertKind.BACKLOG_STALE,
        detail=detail,
        now=now,
    )


def snapshot_interval_seconds() -> int | None:
    """The snapshot schedule's interval as edited in the admin; None when it is disabled
    or not an interval (nothing is then "overdue")."""
    task = PeriodicTask.objects.select_related("interval").filter(task=SNAPSHOT_TASK).first()
    if task is None:
        return settings.SNAPSHOT_INTERVAL_SECONDS
    if not task.enabled or task.interval is None:
        return None
    return int(dt.timedelta(**{task.interval.period: task.interval.every}).total_seconds())


def snapshots_overdue_check(*, now: dt.datetime) -> int:
    interval = snapshot_interval_seconds()
    last_ok = (
        SnapshotRun.objects.filter(outcome=RunOutcome.OK).order_by("-started_at", "-id").first()
    )
    if interval is None or last_ok is None:  # no schedule, or never run yet
        return 0
    age = (now - last_ok.started_at).total_seconds()
    overdue = age > 2 * interval
    if overdue:
        detail = (
            f"No successful snapshot run for {age:.0f} s (the schedule runs every {interval} s); "
            f"the last one was run {last_ok.pk}. Is beat running?"
        )
    else:
        detail = f"snapshot run {last_ok.pk} succeeded."
    return _toggle(
        holds=overdue,
        key=OVERDUE_CONDITION,
        kind=AlertKind.SNAPSHOTS_OVERDUE,
        detail=detail,
        now=now,
    )


def snapshot_failure_recovery_check(*, now: dt.datetime) -> int:
    """The failure alert is raised by the job itself; it ends when the latest run that was
    not skipped succeeded."""
    latest = (
        SnapshotRun.objects.exclude(outcome=RunOutcome.SKIPPED)
        .order_by("-started_at", "-id")
        .first()
    )
    if latest is None or latest.outcome != RunOutcome.OK:
        return 0
    cleared = alert_condition_clear(
        key=RUN_FAILED_CONDITION,
        kind=AlertKind.SNAPSHOT_RUN_FAILED,
        detail=f"Recovered: snapshot run {latest.pk} succeeded.",
        now=now,
    )
    return -1 if cleared else 0


def alert_checks_run(*, now: dt.datetime) -> ChecksResult:
    outcomes = [
        backlog_stale_check(now=now),
        snapshots_overdue_check(now=now),
        snapshot_failure_recovery_check(now=now),
    ]
    return ChecksResult(
        raised=outcomes.count(1),
        cleared=outcomes.count(-1),
        requeued=deliveries_requeue_unsent(now=now),
    )
