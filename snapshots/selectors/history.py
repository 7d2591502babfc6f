"""Reads about snapshots: a day's history, what it showed at a time, and the job log."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django_celery_beat.models import PeriodicTask

from aggregation.models import TOTAL_DIGITS, VALUE_PLACES, DayTotal, Metric
from aggregation.selectors import day_total_list
from events.models import Event
from snapshots.models import (
    LATE_CORRECTION_REASONS,
    RunOutcome,
    Snapshot,
    SnapshotRun,
    SnapshotSource,
)
from snapshots.selectors.late_corrections import late_corrections_window


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


def snapshot_sources_of(*, day_total: DayTotal, source: str) -> dict[int, SnapshotSource]:
    """One source's slice of each snapshot of a day, by sequence (absent: no events yet)."""
    rows = SnapshotSource.objects.filter(
        metric_id=day_total.metric_id, day=day_total.day, source=source
    )
    return {row.sequence: row for row in rows}


def snapshot_source_split(*, snapshot: Snapshot) -> list[SnapshotSource]:
    """A snapshot's value split by source, largest first."""
    return list(SnapshotSource.objects.filter(snapshot=snapshot).order_by("-value", "source"))


def latest_snapshots(day_total_ids: QuerySet) -> dict[int, Snapshot]:
    """Each day's latest snapshot (for the reconcile)."""
    # Correlated on the unique (day_total, sequence) index: one index probe per day.
    latest_sequence = (
        Snapshot.objects.filter(day_total_id=OuterRef("day_total_id"))
        .order_by("-sequence")
        .values("sequence")[:1]
    )
    snapshots = Snapshot.objects.filter(
        day_total_id__in=day_total_ids, sequence=Subquery(latest_sequence)
    ).only("day_total_id", "sequence", "value", "event_count")
    return {snapshot.day_total_id: snapshot for snapshot in snapshots}


def snapshot_run_last_completed() -> SnapshotRun | None:
    return SnapshotRun.objects.filter(outcome=RunOutcome.OK).order_by("-started_at", "-id").first()


def snapshot_runs_recent(*, limit: int = 20) -> QuerySet[SnapshotRun]:
    return SnapshotRun.objects.order_by("-started_at", "-id")[:limit]


def _arrived_after_end_sums() -> tuple[QuerySet, QuerySet]:
    """Correlated sums of the counted events of the outer day that arrived after it ended:
    while it was provisional (late), and once it was final (after final)."""
    events = Event.objects.counted().filter(
        day_total_id=OuterRef("pk"), arrival_time__gte=OuterRef("day_end")
    )

    def total(queryset: QuerySet) -> QuerySet:
        return queryset.values("day_total_id").annotate(total=Sum("value")).values("total")[:1]

    return (
        total(events.filter(arrival_time__lt=OuterRef("final_instant"))),
        total(events.filter(arrival_time__gte=OuterRef("final_instant"))),
    )


@dataclass(frozen=True)
class AfterDayEnd:
    """What changed after the day ended: `at_day_end` + `late` + `after_final` = the value."""

    at_day_end: Decimal
    late: Decimal
    after_final: Decimal


def day_after_end(*, day_total: DayTotal) -> AfterDayEnd:
    """The day's value split by when its events arrived (one query)."""
    events = Event.objects.counted().filter(
        day_total_id=day_total.pk, arrival_time__gte=day_total.day_end
    )
    figures = events.aggregate(
        late=Sum("value", filter=Q(arrival_time__lt=day_total.final_at)),
        after_final=Sum("value", filter=Q(arrival_time__gte=day_total.final_at)),
    )
    late, after_final = figures["late"] or Decimal(0), figures["after_final"] or Decimal(0)
    return AfterDayEnd(
        at_day_end=day_total.value - late - after_final, late=late, after_final=after_final
    )


def day_totals_with_history(
    *, metric: Metric | None = None, day_from: dt.date | None = None, day_to: dt.date | None = None
) -> QuerySet[DayTotal]:
    """Day totals annotated with what their snapshots say: the first published value, the
    change since it, and the last snapshot that moved the value (change, when, reason).

    Correlated subqueries on the unique (day_total, sequence) index: one query for a page of
    days, whatever the number of days or snapshots; and sortable by any of them.
    """
    snapshots = Snapshot.objects.filter(day_total=OuterRef("pk"))
    first = snapshots.filter(sequence=1).values("value")[:1]
    late, after_final = _arrived_after_end_sums()
    last_move = snapshots.exclude(change=0).order_by("-sequence")
    amount = DecimalField(max_digits=TOTAL_DIGITS, decimal_places=VALUE_PLACES)
    days = day_total_list(metric=metric, day_from=day_from, day_to=day_to).with_final_at()
    return days.annotate(
        late_change=Coalesce(Subquery(late, output_field=amount), Decimal(0)),
        after_final_change=Coalesce(Subquery(after_final, output_field=amount), Decimal(0)),
        after_end_change=ExpressionWrapper(
            F("late_change") + F("after_final_change"), output_field=amount
        ),
        first_value=Subquery(first, output_field=amount),
        change_since_first=ExpressionWrapper(F("value") - F("first_value"), output_field=amount),
        last_change=Subquery(last_move.values("change")[:1], output_field=amount),
        last_change_at=Subquery(last_move.values("taken_at")[:1]),
        last_change_reason=Subquery(last_move.values("reason")[:1]),
        last_change_anomaly=Subquery(last_move.values("anomaly")[:1], output_field=JSONField()),
    )


def periodic_tasks_list() -> QuerySet[PeriodicTask]:
    """The beat schedules (snapshot run, sweeper, ...), as edited in the admin."""
    return PeriodicTask.objects.select_related("interval", "crontab", "solar", "clocked").order_by(
        "name"
    )


DIGEST_FIELDS = (
    "metric__name",
    "day",
    "sequence",
    "taken_at",
    "value",
    "event_count",
    "late_event_count",
    "change",
    "change_events",
    "late_events",
    "too_late_events",
    "status",
    "reason",
)
_SIX_PLACES = Decimal("0.000001")


def _canonical(value: object) -> str:
    """One spelling per value: decimals with six places, instants in UTC, so digests of
    two histories compare equal when the histories do."""
    if isinstance(value, Decimal):
        return f"{(value + 0).quantize(_SIX_PLACES):f}"  # + 0 turns -0 into 0
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def snapshot_table_digest() -> str:
    """SHA-256 over every snapshot, ordered by (metric name, day, sequence), one line per
    snapshot with the fields of DIGEST_FIELDS. Row ids and run ids are left out: they
    depend on the database, not on the history."""
    digest = hashlib.sha256()
    rows = Snapshot.objects.order_by("metric__name", "day", "sequence").values_list(*DIGEST_FIELDS)
    for row in rows.iterator(chunk_size=5000):
        digest.update(("|".join(_canonical(value) for value in row) + "\n").encode())
    return digest.hexdigest()


# How many of a metric's newest late corrections the anomaly history reads, per day it
# wants: enough for days of many small corrections (frequent snapshots), and a bound.
CORRECTIONS_READ_PER_DAY = 20


def late_corrections_recent(*, metric_id: int, limit: int) -> list[tuple[Decimal, Decimal]]:
    """(change, value) of the largest late correction (relative to its day's value before
    it) of each of a metric's latest `limit` days with late corrections, newest first,
    among its newest `limit * CORRECTIONS_READ_PER_DAY` late corrections.

    Kept in the process and brought up to date with the corrections added since the last
    call (snapshots/selectors/late_corrections.py); `late_corrections_ranked` is the same
    answer ranked by PostgreSQL from scratch."""
    return late_corrections_window(
        metric_id=metric_id, limit=limit, per_day=CORRECTIONS_READ_PER_DAY
    )


def late_corrections_ranked(
    *, metric_id: int, limit: int, per_day: int = CORRECTIONS_READ_PER_DAY
) -> list[tuple[Decimal, Decimal]]:
    """`late_corrections_recent`, ranked in one bounded query on a partial index."""
    rows = limit * per_day
    with connection.cursor() as cursor:
        cursor.execute(_LATE_CORRECTIONS_RECENT, [metric_id, LATE_CORRECTION_REASONS, rows, limit])
        return cursor.fetchall()


# The inner query rides the partial index snapshot_late_corrections (metric_id, id DESC);
# then each day's largest ratio (|change| / |value before it|), days by their newest one.
_LATE_CORRECTIONS_RECENT = """
SELECT change, value FROM (
    SELECT change, value,
        row_number() OVER (
            PARTITION BY day_total_id
            ORDER BY abs(change) / NULLIF(abs(value - change), 0) DESC NULLS LAST
        ) AS day_rank,
        max(id) OVER (PARTITION BY day_total_id) AS day_newest
    FROM (
        SELECT id, day_total_id, change, value FROM snapshots_snapshot
        WHERE metric_id = %s AND reason = ANY(%s) ORDER BY id DESC LIMIT %s
    ) AS recent
) AS ranked
WHERE day_rank = 1 ORDER BY day_newest DESC LIMIT %s
"""


def snapshot_runs_changing(*, limit: int = 20) -> QuerySet[SnapshotRun]:
    """The recent runs that did something worth reading: snapshotted a day, were skipped
    or failed (runs that found nothing to publish are only counted)."""
    idle = Q(outcome=RunOutcome.OK, days_snapshotted=0)
    return SnapshotRun.objects.exclude(idle).order_by("-started_at", "-id")[:limit]


def snapshot_runs_idle_count(*, since: dt.datetime) -> int:
    return SnapshotRun.objects.filter(
        outcome=RunOutcome.OK, days_snapshotted=0, started_at__gte=since
    ).count()
