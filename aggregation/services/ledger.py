"""The day totals and their ledger of contributions: the only code that writes either.

Events (apply, quarantine) and snapshots (the snapshot job) call these functions; the
statements that create, lock, increment and mark day totals all live here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from aggregation.calendar import day_end
from aggregation.models import DayTotal, final_at_sql
from aggregation.selectors import day_total_ids, reporting_timezone
from common.db import execute_prepared


def day_totals_ensure(pairs: Iterable[tuple[int, dt.date]]) -> dict[tuple[int, dt.date], int]:
    """Create any missing day totals and return their ids by (metric_id, day).

    Rows are inserted in sorted order so two concurrent ingests that create the same new
    days wait on each other in the same order instead of deadlocking.
    """
    ordered = sorted(set(pairs))
    if not ordered:
        return {}
    tz = reporting_timezone()
    DayTotal.objects.bulk_create(
        [DayTotal(metric_id=m, day=d, day_end=day_end(d, tz)) for m, d in ordered],
        ignore_conflicts=True,
    )
    return day_total_ids(ordered)


def day_totals_lock(ids: Iterable[int]) -> dict[int, DayTotal]:
    """Lock day totals in id order (a fixed order, so concurrent lockers cannot deadlock).

    FOR NO KEY UPDATE, not FOR UPDATE: an ingest inserting events checks its foreign key
    to the day total with FOR KEY SHARE, which FOR UPDATE would block (and, with the checks
    running in event order, deadlock against this id order). The totals' own writers still
    exclude each other.
    """
    locked = (
        DayTotal.objects.select_for_update(of=("self",), no_key=True)
        .select_related("metric")
        .filter(pk__in=sorted(set(ids)))
        .order_by("pk")
    )
    return {day_total.pk: day_total for day_total in locked}


# The day totals a caller's query names (a column day_total_id, any number of rows per day
# total: say one per event), each locked once, in id order like day_totals_lock (ORDER BY
# runs before the row locks), so lockers cannot deadlock; one statement, and what comes back
# is small: how many were locked under each too-late policy. The names are gathered into an
# array first, so the plan starts from the caller's query (a semi-join may instead walk
# every day total's rows in the caller's table).
_LOCK_NAMED = """
SELECT m.too_late_policy, count(*)
FROM (
    SELECT d.id, d.metric_id FROM aggregation_daytotal d
    WHERE d.id = ANY(ARRAY(SELECT DISTINCT n.day_total_id FROM ({named}) n))
    ORDER BY d.id
    FOR NO KEY UPDATE OF d
) locked
JOIN aggregation_metric m ON m.id = locked.metric_id
GROUP BY m.too_late_policy
"""


def day_totals_lock_named(*, named_sql: str, params: Sequence[object]) -> dict[str, int]:
    """Lock the day totals that `named_sql` names (in a column day_total_id, repeats
    allowed) for an increment, each once and in id order, in one statement. Returns how
    many were locked under each too-late policy (policies with none left out)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_NAMED.format(named=named_sql), params)
        return dict(cursor.fetchall())


@dataclass(frozen=True, slots=True)
class DueDayTotal:
    """A day total due for a snapshot, as read under its lock, with what the snapshot job
    needs of its metric."""

    id: int
    metric_id: int
    day: dt.date
    day_end: dt.datetime
    value: Decimal
    event_count: int
    late_event_count: int
    snapshot_count: int
    snapshot_value: Decimal
    finalized: bool
    metric_name: str
    allowed_lateness: dt.timedelta
    anomaly_detection: bool


# Days changed since their last snapshot and days turned final without a final snapshot
# (both on partial indexes: O(such days), never O(history)), locked in id order like
# day_totals_lock, in one statement.
_LOCK_DUE = f"""
SELECT d.id, d.metric_id, d.day, d.day_end, d.value, d.event_count, d.late_event_count,
       d.snapshot_count, d.snapshot_value, d.finalized, m.name, m.allowed_lateness,
       m.anomaly_detection
FROM aggregation_daytotal d
JOIN aggregation_metric m ON m.id = d.metric_id
WHERE d.id IN (
    SELECT id FROM aggregation_daytotal WHERE snapshot_due
    UNION
    SELECT f.id FROM aggregation_daytotal f JOIN aggregation_metric fm ON fm.id = f.metric_id
    WHERE NOT f.finalized AND f.snapshot_count > 0 AND {final_at_sql("f", "fm")} <= %s
)
ORDER BY d.id
FOR NO KEY UPDATE OF d
"""


def day_totals_lock_due(now: dt.datetime) -> list[DueDayTotal]:
    """Lock the day totals due for a snapshot at `now` (changed since their last one, or
    turned final without a final one), in id order; one prepared statement."""
    return [DueDayTotal(*row) for row in execute_prepared(_LOCK_DUE, [now])]


@dataclass(frozen=True)
class LedgerEntry:
    """One amount to add to one (locked) day total and one of its sources: a batch's events
    of that source on that day, or events accepted from quarantine (batch_id None)."""

    day_total_id: int
    kind: str
    value: Decimal
    event_count: int
    late_event_count: int = 0
    too_late_event_count: int = 0
    batch_id: int | None = None
    source: str = ""


# Appending the contributions, adding them to their (already locked) day totals and to the
# per-source totals is one statement: no total can move without the ledger rows that
# explain it, and the sources of a day always sum to the day. A day total and a source total
# are each updated once per statement (their contributions summed first): UPDATE ... FROM
# would apply one row per target, and INSERT ... ON CONFLICT DO UPDATE refuses to touch a
# row twice (several batches applied together each add to the same source). The rows come
# from {rows} (columns day_total_id, batch_id, kind, value, events, late, too_late, source);
# what the statement returns from the added contributions, from {result}. The source rows
# take their metric and day from the day totals' table by primary key, not from the UPDATE's
# RETURNING: a join of two CTEs, each estimated at one row, was planned as a nested loop of
# CTE scans, quadratic in the days touched (0.75 s for a batch over 1,095 days).
_LEDGER_APPEND = """
WITH added AS (
    INSERT INTO aggregation_contribution
        (day_total_id, batch_id, kind, value, event_count, late_event_count,
         too_late_event_count, applied_at, source)
    SELECT c.day_total_id, c.batch_id, c.kind, c.value, c.events, c.late, c.too_late, %s,
           c.source
    FROM ({rows}) c
    RETURNING id, day_total_id, batch_id, source, value, event_count, late_event_count,
              too_late_event_count
), per_source AS (
    SELECT day_total_id, source, sum(value) AS value, sum(event_count) AS event_count,
           sum(late_event_count) AS late, sum(too_late_event_count) AS too_late
    FROM added GROUP BY day_total_id, source
), per_day AS (
    SELECT day_total_id, sum(value) AS value, sum(event_count) AS event_count,
           sum(late) AS late, sum(too_late) AS too_late
    FROM per_source GROUP BY day_total_id
), totals AS (
    UPDATE aggregation_daytotal d
    SET value = d.value + a.value,
        event_count = d.event_count + a.event_count,
        late_event_count = d.late_event_count + a.late,
        too_late_event_count = d.too_late_event_count + a.too_late,
        revision = d.revision + 1,
        last_applied_at = %s
    FROM per_day a
    WHERE d.id = a.day_total_id
), sources AS (
    INSERT INTO aggregation_daysourcetotal
        (day_total_id, metric_id, day, source, value, event_count, late_event_count)
    SELECT a.day_total_id, t.metric_id, t.day, a.source, a.value, a.event_count, a.late
    FROM per_source a JOIN aggregation_daytotal t ON t.id = a.day_total_id
    ORDER BY a.day_total_id, a.source
    ON CONFLICT (day_total_id, source) DO UPDATE
    SET value = aggregation_daysourcetotal.value + EXCLUDED.value,
        event_count = aggregation_daysourcetotal.event_count + EXCLUDED.event_count,
        late_event_count = aggregation_daysourcetotal.late_event_count
                           + EXCLUDED.late_event_count
)
{result}
"""

_ENTRIES = """
SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::numeric[], %s::integer[],
                     %s::integer[], %s::integer[], %s::text[])
    AS c(day_total_id, batch_id, kind, value, events, late, too_late, source)
"""

_LEDGER_APPEND_ENTRIES = _LEDGER_APPEND.format(
    rows=_ENTRIES, result="SELECT batch_id, day_total_id, source, id FROM added"
)


def ledger_append(
    *, entries: Sequence[LedgerEntry], now: dt.datetime
) -> dict[tuple[int | None, int, str], int]:
    """Append contributions and add them to their day totals and source totals, in one
    statement; at most one entry per (batch, day total, source), batches applied together
    each with their own. The caller holds the day totals' locks (day_totals_lock) in its
    transaction, which also serialises the source totals. Returns the new contribution id
    by (batch id, day total id, source); the batch id is None for quarantine acceptances."""
    if not entries:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _LEDGER_APPEND_ENTRIES,
            [
                now,
                [e.day_total_id for e in entries],
                [e.batch_id for e in entries],
                [e.kind for e in entries],
                [e.value for e in entries],
                [e.event_count for e in entries],
                [e.late_event_count for e in entries],
                [e.too_late_event_count for e in entries],
                [e.source for e in entries],
                now,
            ],
        )
        return {
            (batch_id, day_total_id, source): pk
            for batch_id, day_total_id, source, pk in cursor.fetchall()
        }


@dataclass(frozen=True)
class LedgerAppended:
    """What an append from a caller's query added: contributions, events, day totals."""

    contributions: int
    events: int
    day_totals: int


_APPENDED = """
SELECT count(*), coalesce(sum(event_count), 0), count(DISTINCT day_total_id) FROM added
"""


def ledger_append_grouped(
    *, rows_sql: str, params: Sequence[object], now: dt.datetime
) -> LedgerAppended:
    """`ledger_append` with the entries computed by the database: `rows_sql` yields one row
    per contribution (columns day_total_id, batch_id, kind, value, events, late, too_late,
    source; at most one per (batch, day total, source)), so no row of it crosses into
    Python. The caller holds the day totals' locks (day_totals_lock_named)."""
    with connection.cursor() as cursor:
        cursor.execute(_LEDGER_APPEND.format(rows=rows_sql, result=_APPENDED), [now, *params, now])
        contributions, events, day_totals = cursor.fetchone()
    return LedgerAppended(contributions=contributions, events=events, day_totals=day_totals)


@dataclass(frozen=True)
class SnapshotMark:
    """What a snapshot took from one day total: the total now matches it."""

    day_total_id: int
    sequence: int
    value: Decimal
    final: bool
    restatement: bool


# Marking the day totals and stamping the contributions a snapshot covers is one statement.
_MARK_AND_STAMP = """
WITH marked AS (
    UPDATE aggregation_daytotal d
    SET snapshot_revision = d.revision,
        snapshot_count = s.sequence,
        snapshot_value = s.value,
        last_snapshot_at = %s,
        finalized = d.finalized OR s.final,
        restated = d.restated OR s.restatement
    FROM unnest(%s::bigint[], %s::integer[], %s::numeric[], %s::boolean[], %s::boolean[])
         AS s(id, sequence, value, final, restatement)
    WHERE d.id = s.id
    RETURNING d.id, s.sequence
)
UPDATE aggregation_contribution c
SET snapshot_sequence = m.sequence
FROM marked m
WHERE c.day_total_id = m.id AND c.snapshot_sequence IS NULL
"""


def day_totals_mark_snapshotted(*, marks: Sequence[SnapshotMark], now: dt.datetime) -> None:
    """Record that each (locked) day total was copied into a snapshot, and stamp its
    unassigned contributions with that snapshot's sequence: the explanation of the change."""
    if not marks:
        return
    execute_prepared(
        _MARK_AND_STAMP,
        [
            now,
            [m.day_total_id for m in marks],
            [m.sequence for m in marks],
            [m.value for m in marks],
            [m.final for m in marks],
            [m.restatement for m in marks],
        ],
    )
