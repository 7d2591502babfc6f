"""Ingested events, the batches they arrived in, conflicts, rejections and quarantine."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from aggregation.models import VALUE_PLACES, DayTotal, Metric

EVENT_VALUE_DIGITS = 20  # |value| < 10^14 with 6 decimal places


class IngestChannel(models.TextChoices):
    API = "api", "API"
    FORM = "form", "Web form"
    CSV = "csv", "CSV upload"
    REPLAY = "replay", "Replay"
    DEMO = "demo", "Demo data"


class BatchStatus(models.TextChoices):
    RECEIVED = "received", "Received (waiting to be applied)"
    APPLIED = "applied", "Applied"


class IngestBatch(models.Model):
    """One accepted request. Its events are durable once the row commits; the apply task
    claims it by flipping `status` in the same transaction that adds it to the totals."""

    received_at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=IngestChannel.choices)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.RECEIVED
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    accepted_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    conflict_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    enqueue_count = models.PositiveIntegerField(
        default=0, help_text="How many times the apply task was queued for it."
    )
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(
        blank=True, help_text="The last error raised while applying this batch, if any."
    )
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "ingest batches"
        ordering = ["-id"]
        indexes = [
            # The sweeper, the backlog figure and the oldest-unapplied age.
            models.Index(
                fields=["received_at"],
                condition=Q(status="received"),
                name="batch_unapplied",
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.accepted_count} events, {self.status})"


class EventQuerySet(models.QuerySet):
    def counted(self) -> EventQuerySet:
        """The events the day totals count ("which events count", written once): those of
        applied batches, less those held or rejected in quarantine (accepted ones count)."""
        return self.filter(batch__status=BatchStatus.APPLIED).filter(
            Q(quarantine__isnull=True) | Q(quarantine__status=QuarantineStatus.ACCEPTED)
        )


class Event(models.Model):
    """An event exactly as accepted. Written once; its status derives from its batch,
    its contribution and any quarantine decision."""

    event_id = models.CharField(max_length=128)
    # No database foreign key: the insert copies metric_id from the event's day total in the
    # same statement, and the day total's own key holds the metric. A check per inserted
    # row cost about a third of the insert (see docs/scaling.md).
    metric = models.ForeignKey(
        Metric, on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    day = models.DateField(help_text="Day of event_time in the reporting time zone.")
    # No database foreign keys to the day total and the batch either, for the same reason:
    # the batch statement inserts the batch row and joins each event to its day total
    # (events/services/ingest.py), so both exist when the event does, and neither is ever
    # deleted while it has events (PROTECT, enforced by Django). The two checks per row cost
    # about a third of the insert (docs/scaling.md, "Ingest request path").
    day_total = models.ForeignKey(
        DayTotal, on_delete=models.PROTECT, related_name="events", db_constraint=False
    )
    event_time = models.DateTimeField()
    arrival_time = models.DateTimeField()
    value = models.DecimalField(max_digits=EVENT_VALUE_DIGITS, decimal_places=VALUE_PLACES)
    source = models.CharField(max_length=64, blank=True, default="")
    batch = models.ForeignKey(
        IngestBatch,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # A constraint rather than unique=True: the same unique index, without the extra
            # LIKE-pattern index Django adds for unique text fields on PostgreSQL.
            models.UniqueConstraint(fields=["event_id"], name="events_event_event_id_key"),
        ]
        indexes = [
            # Apply groups a batch by day; a snapshot's explanation looks up (batch, day).
            models.Index(fields=["batch", "day_total"], name="event_batch_day"),
        ]

    def __str__(self) -> str:
        return self.event_id

    @property
    def lateness(self):
        return self.arrival_time - self.event_time


class Conflict(models.Model):
    """An event_id seen again with different content: recorded, never counted."""

    event_id = models.CharField(max_length=128, db_index=True)
    batch = models.ForeignKey(IngestBatch, on_delete=models.PROTECT, related_name="conflicts")
    received_at = models.DateTimeField()
    stored = models.JSONField(help_text="The content that was counted (first seen).")
    incoming = models.JSONField(help_text="The different content that was refused.")
    differing_fields = models.JSONField(default=list)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"conflict on {self.event_id}"


class RejectedEvent(models.Model):
    """An invalid event of an accepted request (202), kept so an operator can see what was
    refused and why. Requests refused as a whole (400) store nothing: the client got every
    error in the answer, and a request of garbage cannot fill the database."""

    batch = models.ForeignKey(
        IngestBatch, on_delete=models.PROTECT, related_name="rejections", db_index=False
    )
    index = models.PositiveIntegerField(help_text="Position of the event in its request.")
    event_id = models.CharField(max_length=128, blank=True, db_index=True)
    field = models.CharField(max_length=64, help_text="The field that was wrong.")
    reason = models.TextField()
    raw_payload = models.TextField(
        blank=True, help_text="The event as sent (JSON, cut after a few kilobytes)."
    )

    class Meta:
        ordering = ["-batch_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="rejectedevent_batch_index")
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} #{self.index}: {self.field}"


class QuarantineStatus(models.TextChoices):
    HELD = "held", "Held for review"
    ACCEPTED = "accepted", "Accepted (counted as a restatement)"
    REJECTED = "rejected", "Rejected (kept on record, not counted)"


class QuarantinedEvent(models.Model):
    """A too-late event of a metric whose policy is quarantine. Never deleted."""

    event = models.OneToOneField(
        Event, primary_key=True, on_delete=models.PROTECT, related_name="quarantine"
    )
    day_total = models.ForeignKey(DayTotal, on_delete=models.PROTECT, related_name="quarantined")
    status = models.CharField(
        max_length=16, choices=QuarantineStatus.choices, default=QuarantineStatus.HELD
    )
    held_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    decision_reason = models.TextField(blank=True)
    contribution = models.ForeignKey(
        "aggregation.Contribution",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accepted",
    )

    class Meta:
        ordering = ["-held_at"]
        indexes = [
            models.Index(fields=["held_at"], condition=Q(status="held"), name="quarantine_held")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.status})"


class ArchivedEvent(models.Model):
    """An event moved to an archive file: kept so a resend is still told apart as a
    duplicate (same content hash) or a conflict (other content), never counted again.

    Deliberately small (about 100 bytes a row with its index, see docs/scaling.md): the id,
    the SHA-256 of its content (events.content) and its day, whose archive manifests hold
    the rest. Written with the deletion of the event, in one transaction.
    """

    event_id = models.CharField(max_length=128, primary_key=True)
    content_sha256 = models.BinaryField(max_length=32)
    day_total = models.ForeignKey(
        DayTotal, on_delete=models.PROTECT, related_name="archived_events", db_index=False
    )

    def __str__(self) -> str:
        return f"{self.event_id} (archived)"
