"""Immutable snapshots of day totals and the log of snapshot runs."""

from __future__ import annotations

from typing import NoReturn

from django.db import models
from django.urls import reverse

from aggregation.calendar import DayStatus
from aggregation.models import TOTAL_DIGITS, VALUE_PLACES, DayTotal, Metric
from common.formatting import figure


class ImmutableSnapshotError(Exception):
    """Raised on any attempt to change or delete a snapshot."""


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise ImmutableSnapshotError("Snapshots are immutable: they are never updated or deleted.")


class SnapshotQuerySet(models.QuerySet):
    update = _refuse
    delete = _refuse
    bulk_update = _refuse
    update_or_create = _refuse


class SnapshotReason(models.TextChoices):
    FIRST = "first", "First snapshot of the day"
    UPDATE = "update", "New events arrived"
    LATE_DATA = "late_data", "Late events arrived"
    FINAL = "final", "The day became final"
    RESTATEMENT = "restatement", "Changed after the day was final"


# Snapshots whose change comes from late or too-late events: the late corrections.
LATE_CORRECTION_REASONS = [SnapshotReason.LATE_DATA.value, SnapshotReason.RESTATEMENT.value]


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    API = "api", "API"
    MANUAL = "manual", "Manual"
    REPLAY = "replay", "Replay"


class RunOutcome(models.TextChoices):
    OK = "ok", "Completed"
    SKIPPED = "skipped", "Skipped: another run held the lock"
    FAILED = "failed", "Failed"


class SnapshotRun(models.Model):
    """One execution of the snapshot job (the job log)."""

    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=RunOutcome.choices)
    days_snapshotted = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at"], name="snapshotrun_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"


class Snapshot(models.Model):
    """The total of one (metric, day) at one moment. Never updated, never deleted: the model
    refuses, the admin refuses, and a PostgreSQL trigger refuses."""

    # No index of their own: the unique (day total, sequence) and (metric, day, sequence)
    # below start with them.
    day_total = models.ForeignKey(
        DayTotal, on_delete=models.PROTECT, related_name="snapshots", db_index=False
    )
    metric = models.ForeignKey(
        Metric, on_delete=models.PROTECT, related_name="snapshots", db_index=False
    )
    day = models.DateField()
    sequence = models.PositiveIntegerField(help_text="1 for the day's first snapshot, then 2, ...")
    taken_at = models.DateTimeField()
    run = models.ForeignKey(SnapshotRun, on_delete=models.PROTECT, related_name="snapshots")
    value = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES)
    event_count = models.BigIntegerField()
    late_event_count = models.BigIntegerField(help_text="Late events in the total so far.")
    change = models.DecimalField(
        max_digits=TOTAL_DIGITS,
        decimal_places=VALUE_PLACES,
        help_text="Value minus the previous snapshot's value (the whole value for the first).",
    )
    change_events = models.PositiveIntegerField(help_text="Events behind the change.")
    late_events = models.PositiveIntegerField(help_text="Late events among them.")
    too_late_events = models.PositiveIntegerField(
        default=0, help_text="Events among them counted after the day was final."
    )
    status = models.CharField(max_length=16, choices=[(s.value, s.name.title()) for s in DayStatus])
    reason = models.CharField(max_length=16, choices=SnapshotReason.choices)
    # {"score", "threshold", "detail"} when this late correction was unusually large for its
    # metric (snapshots/services/anomaly.py); decided on insert, immutable like the rest.
    anomaly = models.JSONField(null=True, blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["day_total_id", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "day", "sequence"], name="snapshot_metric_day_sequence"
            ),
            models.UniqueConstraint(fields=["day_total", "sequence"], name="snapshot_day_sequence"),
        ]
        indexes = [
            # The anomaly rule's history: a metric's latest late corrections, newest first.
            models.Index(
                fields=["metric", "-id"],
                condition=models.Q(reason__in=LATE_CORRECTION_REASONS),
                name="snapshot_late_corrections",
            ),
        ]

    def __str__(self) -> str:
        # Readable in the admin's titles and breadcrumbs: "orders on 2026-11-02, snapshot #1
        # (1,753.18)" rather than ids and six decimal places.
        return (
            f"{self.metric.name} on {self.day.isoformat()}, snapshot #{self.sequence} "
            f"({figure(self.value)})"
        )

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            _refuse()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        """The what-changed page: the events behind this snapshot's change."""
        return reverse(
            "snapshot-changes", args=[self.metric.name, self.day.isoformat(), self.sequence]
        )

    def delete(self, *args: object, **kwargs: object) -> NoReturn:
        _refuse()


class SnapshotSource(models.Model):
    """One source's slice of one snapshot: its value, count and change at that snapshot.

    Every snapshot records every source the day has events from (a source that did not
    move shows change 0), so a source's history, as-of and explanation follow the day's.
    Immutable like the snapshot: the model, the admin and a PostgreSQL trigger refuse.
    """

    # Neither has an index of its own: the unique (snapshot, source) and the (metric, day,
    # ...) index below start with them.
    snapshot = models.ForeignKey(
        Snapshot, on_delete=models.PROTECT, related_name="sources", db_index=False
    )
    # Copied from the snapshot so as-of ranges read this table and the snapshot's index.
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    sequence = models.PositiveIntegerField()
    source = models.CharField(max_length=64, blank=True, default="")
    value = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES)
    event_count = models.BigIntegerField()
    late_event_count = models.BigIntegerField(default=0)
    change = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES)
    change_events = models.PositiveIntegerField()
    late_events = models.PositiveIntegerField(default=0)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["snapshot_id", "source"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "source"], name="snapshotsource_once"),
        ]
        indexes = [
            # Ranges, and each (day, source)'s first slice in sequence order.
            models.Index(
                fields=["metric", "day", "source", "sequence"], name="snapshotsource_metric_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id}:{self.source or '(no source)'}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            _refuse()
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> NoReturn:
        _refuse()
