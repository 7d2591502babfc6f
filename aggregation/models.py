"""Metrics, the reporting time zone and the per-(metric, day) running totals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.urls import reverse

from aggregation.calendar import DayStatus, day_status
from aggregation.calendar import final_at as day_final_at

# Totals can hold many event values (each below 10^14) without overflowing.
TOTAL_DIGITS = 28
VALUE_PLACES = 6


class ReportingTimezone(models.Model):
    """The one time zone whose calendar days define "a day". Written once at first migrate."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    name = models.CharField(max_length=64, help_text="IANA time zone name, e.g. Europe/Paris.")
    fixed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="reportingtz_singleton")]

    def __str__(self) -> str:
        return self.name


class TooLatePolicy(models.TextChoices):
    RESTATE = "restate", "Restate: count it and mark the day restated"
    QUARANTINE = "quarantine", "Quarantine: hold it for an operator to accept or reject"


class Metric(models.Model):
    name = models.SlugField(max_length=64, unique=True, help_text="Used in the API and URLs.")
    description = models.TextField(blank=True)
    allowed_lateness = models.DurationField(
        default=dt.timedelta(days=1),
        verbose_name="allowed lateness",
        help_text=(
            "How long after a day ends late events are still expected. Until then the day is "
            "provisional; after it, final. Enter seconds (86400) or days and time "
            "(1 00:00:00)."
        ),
    )
    too_late_policy = models.CharField(
        max_length=16,
        choices=TooLatePolicy.choices,
        default=TooLatePolicy.RESTATE,
        verbose_name="too-late policy",
        help_text="What happens to an event whose day is already final.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Events that name no metric are counted in the default metric."
    )
    unit = models.CharField(
        max_length=32, blank=True, default="", help_text="Free text, e.g. EUR or ms; empty: none."
    )
    raw_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        verbose_name="raw retention (days)",
        help_text=(
            "Archive the raw events of final, snapshotted days older than this many days to "
            "object storage (totals, snapshots and explanations stay). Empty: keep forever."
        ),
    )
    anomaly_detection = models.BooleanField(
        default=True,
        db_default=True,  # rows inserted with SQL (bench/faults) get it too
        help_text=(
            "Flag late corrections that are unusually large for this metric (and alert). "
            "Off: its snapshots are never flagged."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="metric_one_default"
            ),
            models.CheckConstraint(
                condition=Q(allowed_lateness__gte=dt.timedelta(0)),
                name="metric_lateness_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def allowed_lateness_seconds(self) -> int:
        return int(self.allowed_lateness.total_seconds())


# "When a day turns final": its end plus its metric's allowed lateness. Written once for
# Python (calendar.final_at), once for the ORM (FINAL_AT) and once for raw SQL
# (final_at_sql); every caller uses one of these.
FINAL_AT = ExpressionWrapper(
    F("day_end") + F("metric__allowed_lateness"), output_field=DateTimeField()
)


def final_at_sql(day_total: str = "d", metric: str = "m") -> str:
    """The same rule in SQL, for aliases of aggregation_daytotal and aggregation_metric."""
    return f"({day_total}.day_end + {metric}.allowed_lateness)"


class DayTotalQuerySet(models.QuerySet):
    def with_final_at(self) -> DayTotalQuerySet:
        return self.annotate(final_instant=FINAL_AT)

    def final_by(self, now: dt.datetime) -> DayTotalQuerySet:
        """Days that are final at `now`."""
        return self.with_final_at().filter(final_instant__lte=now)


class DayTotal(models.Model):
    """The running total of one metric on one reporting day.

    `value`, `event_count` and the late counts move only inside the apply transaction that
    also writes the matching contribution; `revision` counts those applies. A snapshot run
    copies the row into an immutable snapshot and records the revision it covered, so
    `revision > snapshot_revision` means "changed since its last snapshot".
    """

    # No index of its own: the unique (metric, day) below starts with it.
    metric = models.ForeignKey(
        Metric, on_delete=models.PROTECT, related_name="day_totals", db_index=False
    )
    day = models.DateField()
    day_end = models.DateTimeField(help_text="The first instant after this day (reporting zone).")
    value = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES, default=0)
    event_count = models.BigIntegerField(default=0)
    late_event_count = models.BigIntegerField(
        default=0, help_text="Events applied after the day ended and already had a snapshot."
    )
    too_late_event_count = models.BigIntegerField(
        default=0, help_text="Events counted after the day was final (restatements)."
    )
    revision = models.BigIntegerField(default=0, help_text="Grows with every applied batch.")
    snapshot_revision = models.BigIntegerField(default=0)
    snapshot_count = models.PositiveIntegerField(default=0)
    snapshot_value = models.DecimalField(
        max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES, default=0
    )
    last_snapshot_at = models.DateTimeField(null=True, blank=True)
    last_applied_at = models.DateTimeField(null=True, blank=True)
    finalized = models.BooleanField(default=False, help_text="A final snapshot has been taken.")
    restated = models.BooleanField(
        default=False, help_text="Changed after it was final (a restatement snapshot exists)."
    )
    # Computed by the database. The snapshot job's partial index filters on this column
    # instead of on revision, so an apply (which bumps revision but leaves this true) can
    # update the row in place (a HOT update): hot day rows then do not pile up dead versions
    # and index entries between two autovacuums, which slowed every ingest and apply down.
    snapshot_due = models.GeneratedField(
        expression=ExpressionWrapper(
            Q(revision__gt=F("snapshot_revision")), output_field=models.BooleanField()
        ),
        output_field=models.BooleanField(),
        db_persist=True,
        help_text="Changed since its last snapshot.",
    )

    objects = DayTotalQuerySet.as_manager()

    class Meta:
        ordering = ["-day", "metric_id"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "day"], name="daytotal_metric_day"),
            models.CheckConstraint(
                condition=Q(event_count__gte=0)
                & Q(late_event_count__gte=0)
                & Q(too_late_event_count__gte=0),
                name="daytotal_counts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(snapshot_revision__lte=F("revision")),
                name="daytotal_snapshot_not_ahead",
            ),
        ]
        indexes = [
            # The snapshot job's "what changed" query: O(changed days), not O(history).
            models.Index(fields=["id"], condition=Q(snapshot_due=True), name="daytotal_due"),
            # Days that still need their final snapshot.
            models.Index(
                fields=["day_end"],
                condition=Q(finalized=False, snapshot_count__gt=0),
                name="daytotal_awaiting_final",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}:{self.day.isoformat()}"

    def get_absolute_url(self) -> str:
        return reverse("day-detail", args=[self.metric.name, self.day.isoformat()])

    def status_at(self, now: dt.datetime) -> DayStatus:
        return day_status(
            day_end=self.day_end, allowed_lateness=self.metric.allowed_lateness, now=now
        )

    @property
    def final_at(self) -> dt.datetime:
        return day_final_at(day_end=self.day_end, allowed_lateness=self.metric.allowed_lateness)

    @property
    def unsnapshotted_change(self) -> Decimal:
        return self.value - self.snapshot_value


class ContributionKind(models.TextChoices):
    BATCH = "batch", "Applied batch"
    ACCEPTED = "accepted", "Accepted from quarantine"


class Contribution(models.Model):
    """What one applied batch (or one quarantine acceptance) added to one day total.

    Append-only. The snapshot that first includes it stamps `snapshot_sequence`; the
    events behind a snapshot's change are exactly those of its contributions.
    """

    # No database foreign keys to the day total and the batch, and no index of their own:
    # the ledger alone inserts contributions, in the statement that adds them to their day
    # totals (locked, so they exist) and in the transaction that claimed their batch; neither
    # is ever deleted while it has contributions (PROTECT, enforced by Django). A backfill
    # batch adds a contribution per day it touches, and the two checks per row (run at
    # commit) cost about as much as the insert (docs/scaling.md, "Batches over many days").
    # Lookups by day total use contribution_snapshot, by batch the unique constraint.
    day_total = models.ForeignKey(
        DayTotal,
        on_delete=models.PROTECT,
        related_name="contributions",
        db_constraint=False,
        db_index=False,
    )
    # The batch that was applied ("events.IngestBatch", named by string: the ledger records
    # where an amount came from without this layer importing the one above it).
    batch = models.ForeignKey(
        "events.IngestBatch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contributions",
        db_constraint=False,
        db_index=False,
    )
    kind = models.CharField(
        max_length=16, choices=ContributionKind.choices, default=ContributionKind.BATCH
    )
    value = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES)
    event_count = models.PositiveIntegerField()
    late_event_count = models.PositiveIntegerField(default=0)
    too_late_event_count = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField()
    snapshot_sequence = models.PositiveIntegerField(null=True, blank=True)
    # The events' source: one contribution per (batch, day, source), so a snapshot's change
    # splits by source exactly as it sums.
    source = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["id"]
        constraints = [
            # A second line of defence behind the batch claim: one contribution per
            # (batch, day, source), so a batch can never be added to a day twice.
            models.UniqueConstraint(
                fields=["batch", "day_total", "source"],
                condition=Q(batch__isnull=False),
                name="contribution_once_per_batch_day_source",
            ),
        ]
        indexes = [
            # A day's contributions by snapshot; its unstamped ones too (snapshot_sequence IS
            # NULL is an index condition on it), which a partial index of their own answered
            # no faster while costing every inserted contribution one more index entry.
            models.Index(fields=["day_total", "snapshot_sequence"], name="contribution_snapshot"),
        ]

    def __str__(self) -> str:
        return f"+{self.value} to {self.day_total_id} ({self.event_count} events)"


class DaySourceTotal(models.Model):
    """The running total of one source on one (metric, day): a slice of the day total.

    Written only by the ledger, in the same statement as the day total and the
    contribution that moved it, so the sources of a day always sum to the day's total.
    `metric` and `day` repeat the day total's so ranges and rankings read this table alone.
    """

    # Not indexed on their own: daysource_day_source and daysource_metric_day lead with them.
    day_total = models.ForeignKey(
        DayTotal, on_delete=models.PROTECT, related_name="sources", db_index=False
    )
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="+", db_index=False)
    day = models.DateField()
    source = models.CharField(max_length=64, blank=True, default="")
    value = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES, default=0)
    event_count = models.BigIntegerField(default=0)
    late_event_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["day_total_id", "source"]
        constraints = [
            models.UniqueConstraint(fields=["day_total", "source"], name="daysource_day_source"),
        ]
        indexes = [
            # Ranges and rankings: one metric's days in a range, optionally one source.
            models.Index(fields=["metric", "day", "source"], name="daysource_metric_day"),
            models.Index(fields=["metric", "source", "day"], name="daysource_metric_source"),
        ]

    def __str__(self) -> str:
        return f"{self.day_total_id}:{self.source or '(no source)'}"


class ReconcileTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Nightly schedule"
    COMMAND = "command", "manage.py reconcile"


class ReconcileRun(models.Model):
    """One reconcile: every day total in range recomputed from its events and from its
    contributions, and its latest snapshot checked against the contributions it covers."""

    trigger = models.CharField(max_length=16, choices=ReconcileTrigger.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    metric = models.ForeignKey(
        Metric,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        help_text="The metric checked; empty means every metric.",
    )
    day_from = models.DateField(null=True, blank=True)
    day_to = models.DateField(null=True, blank=True)
    days_checked = models.PositiveIntegerField()
    drift_count = models.PositiveIntegerField(help_text="Number of figures that disagreed.")
    drift = models.JSONField(
        default=list,
        help_text="Each disagreement: metric, day, check, the stored figure, the recomputed one.",
    )

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        outcome = f"{self.drift_count} drift" if self.drift_count else "no drift"
        return f"reconcile at {self.started_at:%Y-%m-%d %H:%M} ({outcome})"
