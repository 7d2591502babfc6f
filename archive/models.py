"""Archive runs and the manifest of every archive file (one per archived part of a day)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from aggregation.models import TOTAL_DIGITS, VALUE_PLACES, DayTotal, Metric


class ArchiveTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Nightly schedule"
    API = "api", "POST /api/archive/run/"
    COMMAND = "command", "manage.py archive"


class ArchiveOutcome(models.TextChoices):
    RUNNING = "running", "Running (or stopped without a word: a crash)"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DRY_RUN = "dry_run", "Dry run (nothing written)"


class ArchiveRun(models.Model):
    """One execution of the archive job (the job log)."""

    trigger = models.CharField(max_length=16, choices=ArchiveTrigger.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=ArchiveOutcome.choices)
    days = models.PositiveIntegerField(default=0, help_text="Days archived (or, dry: eligible).")
    events = models.PositiveBigIntegerField(default=0, help_text="Events moved to files.")
    bytes = models.PositiveBigIntegerField(default=0, help_text="Compressed bytes written.")
    files_written = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"archive run {self.pk} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"


class ManifestState(models.TextChoices):
    WRITTEN = "written", "File written (events still in the database)"
    VERIFIED = "verified", "File read back and verified (events still in the database)"
    ARCHIVED = "archived", "Archived (events deleted from the database)"
    SUPERSEDED = "superseded", "Superseded by a later file (never archived)"
    RESTORED = "restored", "Restored (events back in the database)"


class ArchiveManifest(models.Model):
    """One archive file: the events of one day total (all of them at the time, or those
    counted since an earlier part), with the figures it was verified against."""

    # No index of its own: the unique manifest_file_once below starts with it.
    day_total = models.ForeignKey(
        DayTotal, on_delete=models.PROTECT, related_name="archives", db_index=False
    )
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="archives")
    day = models.DateField()
    run = models.ForeignKey(ArchiveRun, on_delete=models.PROTECT, related_name="manifests")
    state = models.CharField(max_length=16, choices=ManifestState.choices)
    event_count = models.PositiveBigIntegerField()
    value_sum = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES)
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file's bytes (hex).")
    bytes = models.PositiveBigIntegerField()
    location = models.CharField(max_length=512, help_text="Name in the archive storage.")
    snapshot_sequences = models.JSONField(
        default=list, help_text="The snapshots whose change these events explain."
    )
    written_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["day_total_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["day_total", "sha256"], name="manifest_file_once"),
        ]
        indexes = [
            models.Index(
                fields=["day_total"], condition=Q(state="archived"), name="manifest_archived"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}:{self.day} {self.event_count} events ({self.state})"
