"""Alerts: what happened that an operator should hear about, and each attempt to tell them."""

from __future__ import annotations

from django.core.validators import URLValidator
from django.db import models

from aggregation.models import Metric


class AlertKind(models.TextChoices):
    ANOMALY = "anomaly", "Unusually large late correction"
    RESTATEMENT = "restatement", "A final day was restated"
    RECONCILE_DRIFT = "reconcile_drift", "Reconcile found drift"
    SNAPSHOT_RUN_FAILED = "snapshot_run_failed", "The snapshot job failed"
    SNAPSHOTS_OVERDUE = "snapshots_overdue", "No successful snapshot run for two intervals"
    BACKLOG_STALE = "backlog_stale", "Unapplied events are getting old"


class Alert(models.Model):
    """One alert. Written once; its deliveries record who was told, and how it went."""

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    created_at = models.DateTimeField()
    metric = models.ForeignKey(
        Metric, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    day = models.DateField(null=True, blank=True)
    sequence = models.PositiveIntegerField(null=True, blank=True)
    detail = models.TextField()
    # The condition this alert opened or closed ("" for one-off alerts such as an anomaly).
    condition_key = models.CharField(max_length=128, blank=True)
    recovery = models.BooleanField(
        default=False, help_text="This alert says that an earlier condition is over."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="alert_recent"),
            models.Index(fields=["kind", "-created_at"], name="alert_kind_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class AlertCondition(models.Model):
    """The state of a condition that is checked repeatedly (backlog stale, snapshots overdue,
    a failing snapshot job, reconcile drift): while it is active, checks raise nothing new."""

    key = models.CharField(max_length=128, unique=True)
    active = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.key} ({'active' if self.active else 'clear'})"


class AlertChannel(models.Model):
    """An extra webhook, added in the admin. ALERT_WEBHOOK_URL and the admins' email are
    configured in settings and need no row."""

    name = models.SlugField(max_length=64, unique=True)
    url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="http:// or https:// only. Each alert is POSTed here as JSON, signed.",
    )
    secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="HMAC key for X-Snapagg-Signature; empty: ALERT_WEBHOOK_SECRET.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


class AlertDelivery(models.Model):
    """One alert sent to one channel: its outcome so far. Each try is an attempt row."""

    # No index of its own: the unique alertdelivery_once below starts with it.
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # "webhook" (ALERT_WEBHOOK_URL), "email" (ADMINS) or "webhook:<name>" (AlertChannel).
    channel = models.CharField(max_length=80)
    extra_channel = models.ForeignKey(
        AlertChannel, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["alert_id", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["alert", "channel"], name="alertdelivery_once"),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(status="pending", attempts=0),
                name="alertdelivery_unsent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.status}"


class AlertDeliveryAttempt(models.Model):
    """One try at delivering an alert: every try is recorded, failed or not."""

    delivery = models.ForeignKey(AlertDelivery, on_delete=models.CASCADE, related_name="tries")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    ok = models.BooleanField()
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} ({'ok' if self.ok else 'failed'})"
