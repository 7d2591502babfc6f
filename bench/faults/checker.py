"""Proves the promises with SQL against the run's database and the clients' ack log."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from bench.faults.load import AckLog, Plan

# Snapshot rows as stored, hashed: a byte-level fingerprint of every column.
SNAPSHOT_HASHES = """
SELECT s.id, encode(sha256(convert_to(s::text, 'UTF8')), 'hex') FROM snapshots_snapshot s
"""


def snapshot_hashes(db: psycopg.Connection) -> dict[int, str]:
    return dict(db.execute(SNAPSHOT_HASHES).fetchall())


@dataclass
class Checkpoints:
    """Every snapshot row seen at any checkpoint, with its hash then."""

    seen: dict[int, str] = field(default_factory=dict)
    taken: int = 0
    changed: list[int] = field(default_factory=list)

    def take(self, db: psycopg.Connection) -> None:
        for snapshot_id, digest in snapshot_hashes(db).items():
            earlier = self.seen.setdefault(snapshot_id, digest)
            if earlier != digest:
                self.changed.append(snapshot_id)
        self.taken += 1


# An event is counted when its batch is applied and it is not held or rejected in quarantine
# (an accepted one is counted through its quarantine contribution).
COUNTED_EVENTS = """
SELECT e.id, e.event_id, e.day_total_id, e.value
FROM events_event e
JOIN events_ingestbatch b ON b.id = e.batch_id AND b.status = 'applied'
LEFT JOIN events_quarantinedevent q ON q.event_id = e.id
WHERE q.event_id IS NULL OR q.status = 'accepted'
"""

CHECKS = {
    "batches_unapplied": "SELECT count(*) FROM events_ingestbatch WHERE status = 'received'",
    # Totals against the distinct stored events that should be in them.
    "day_totals_off_from_events": f"""
        WITH counted AS ({COUNTED_EVENTS})
        SELECT count(*) FROM aggregation_daytotal t
        LEFT JOIN (SELECT day_total_id, sum(value) AS value, count(*) AS n
                   FROM counted GROUP BY day_total_id) c ON c.day_total_id = t.id
        WHERE t.value <> coalesce(c.value, 0) OR t.event_count <> coalesce(c.n, 0)""",
    "events_counted_twice": f"""
        WITH counted AS ({COUNTED_EVENTS})
        SELECT coalesce(sum(greatest(t.event_count - coalesce(c.n, 0), 0)), 0)
        FROM aggregation_daytotal t
        LEFT JOIN (SELECT day_total_id, count(*) AS n FROM counted GROUP BY day_total_id) c
               ON c.day_total_id = t.id""",
    "events_missing_from_totals": f"""
        WITH counted AS ({COUNTED_EVENTS})
        SELECT coalesce(sum(greatest(coalesce(c.n, 0) - t.event_count, 0)), 0)
        FROM aggregation_daytotal t
        LEFT JOIN (SELECT day_total_id, count(*) AS n FROM counted GROUP BY day_total_id) c
               ON c.day_total_id = t.id""",
    "contributions_off_from_totals": """
        SELECT count(*) FROM aggregation_daytotal t
        LEFT JOIN (SELECT day_total_id, sum(value) AS value, sum(event_count) AS n
                   FROM aggregation_contribution GROUP BY day_total_id) c ON c.day_total_id = t.id
        WHERE t.value <> coalesce(c.value, 0) OR t.event_count <> coalesce(c.n, 0)""",
    "contributions_twice_for_a_batch_day": """
        SELECT count(*) FROM (SELECT 1 FROM aggregation_contribution WHERE batch_id IS NOT NULL
                              GROUP BY batch_id, day_total_id, source HAVING count(*) > 1) d""",
    "snapshot_sequence_duplicates": """
        SELECT count(*) FROM (SELECT 1 FROM snapshots_snapshot
                              GROUP BY metric_id, day, sequence HAVING count(*) > 1) d""",
    "snapshots_twice_in_one_run": """
        SELECT count(*) FROM (SELECT 1 FROM snapshots_snapshot
                              GROUP BY run_id, day_total_id HAVING count(*) > 1) d""",
    "snapshot_sequence_gaps": """
        SELECT count(*) FROM (SELECT day_total_id FROM snapshots_snapshot GROUP BY day_total_id
                              HAVING max(sequence) <> count(*)) d""",
    "snapshot_chain_breaks": """
        SELECT count(*) FROM (
            SELECT value, change,
                   lag(value, 1, 0::numeric) OVER (PARTITION BY day_total_id ORDER BY sequence)
                       AS previous
            FROM snapshots_snapshot) s
        WHERE s.value <> s.previous + s.change""",
    "snapshot_changes_unexplained": """
        SELECT count(*) FROM snapshots_snapshot s
        LEFT JOIN (SELECT day_total_id, snapshot_sequence, sum(value) AS value
                   FROM aggregation_contribution WHERE snapshot_sequence IS NOT NULL
                   GROUP BY day_total_id, snapshot_sequence) c
               ON c.day_total_id = s.day_total_id AND c.snapshot_sequence = s.sequence
        WHERE s.change <> coalesce(c.value, 0)""",
    "days_not_in_a_snapshot_at_the_end": """
        SELECT count(*) FROM aggregation_daytotal
        WHERE revision > snapshot_revision OR value <> snapshot_value""",
}

FIGURES = {
    "events_stored": "SELECT count(*) FROM events_event",
    "events_counted": f"SELECT count(*) FROM ({COUNTED_EVENTS}) c",
    "events_held_in_quarantine": (
        "SELECT count(*) FROM events_quarantinedevent WHERE status = 'held'"
    ),
    "late_events_counted": "SELECT coalesce(sum(late_event_count), 0) FROM aggregation_daytotal",
    "too_late_events_counted": (
        "SELECT coalesce(sum(too_late_event_count), 0) FROM aggregation_daytotal"
    ),
    "conflicts_recorded": "SELECT count(*) FROM events_conflict",
    "batches": "SELECT count(*) FROM events_ingestbatch",
    "batches_enqueued_more_than_once": (
        "SELECT count(*) FROM events_ingestbatch WHERE enqueue_count > 1"
    ),
    "day_totals": "SELECT count(*) FROM aggregation_daytotal",
    # From the 202 to the apply: direct, or after the sweeper re-enqueued a lost message.
    "ack_to_apply_seconds_median": """
        SELECT round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP
                     (ORDER BY applied_at - received_at))::numeric, 1)
        FROM events_ingestbatch WHERE accepted_count > 0""",
    "ack_to_apply_seconds_max": """
        SELECT round(extract(epoch FROM max(applied_at - received_at))::numeric, 1)
        FROM events_ingestbatch WHERE accepted_count > 0""",
    "snapshots": "SELECT count(*) FROM snapshots_snapshot",
}


def _scalar(db: psycopg.Connection, sql: str) -> int | float:
    value = db.execute(sql).fetchone()[0]
    return int(value) if float(value).is_integer() else float(value)


def acked_ids_check(db: psycopg.Connection, log: AckLog, plan: Plan) -> dict[str, int]:
    """Every acknowledged id is stored, in an applied batch, and counted or held; its stored
    content is one the clients sent; ids acknowledged with two contents have a conflict."""
    db.execute("CREATE TEMP TABLE acked (event_id text PRIMARY KEY) ON COMMIT PRESERVE ROWS")
    with db.cursor().copy("COPY acked (event_id) FROM STDIN") as copy:
        for event_id in log.acked:
            copy.write_row((event_id,))
    db.execute("ANALYZE acked")  # without statistics the planner nests loops over 10^5 rows
    missing = _scalar(
        db,
        "SELECT count(*) FROM acked a LEFT JOIN events_event e USING (event_id) WHERE e.id IS NULL",
    )
    # Stored but in a batch never applied, and not in quarantine: neither counted nor held.
    not_accounted = _scalar(
        db,
        """SELECT count(*) FROM acked a JOIN events_event e USING (event_id)
           JOIN events_ingestbatch b ON b.id = e.batch_id
           LEFT JOIN events_quarantinedevent q ON q.event_id = e.id
           WHERE b.status <> 'applied' AND q.event_id IS NULL""",
    )
    stored = dict(
        db.execute(
            "SELECT e.event_id, e.value::text FROM events_event e JOIN acked a USING (event_id)"
        ).fetchall()
    )
    foreign_content = sum(
        1
        for event_id, value in stored.items()
        if not any(_same_value(value, v["value"]) for v in plan.versions.get(event_id, []))
    )
    conflicted = [event_id for event_id, values in log.acked_versions.items() if len(values) > 1]
    with_conflict_row = set()
    if conflicted:
        rows = db.execute(
            "SELECT DISTINCT event_id FROM events_conflict WHERE event_id = ANY(%s)",
            (conflicted,),
        ).fetchall()
        with_conflict_row = {row[0] for row in rows}
    return {
        "acked_ids_not_stored": missing,
        "acked_ids_neither_counted_nor_held": not_accounted,
        "stored_content_never_sent": foreign_content,
        "acked_conflicts_without_record": len(set(conflicted) - with_conflict_row),
    }


def _same_value(stored: str, sent: str) -> bool:
    from decimal import Decimal

    return Decimal(stored) == Decimal(sent)


def check_all(db: psycopg.Connection, log: AckLog, plan: Plan, checkpoints: Checkpoints) -> dict:
    violations = {name: _scalar(db, sql) for name, sql in CHECKS.items()}
    violations |= acked_ids_check(db, log, plan)
    final = snapshot_hashes(db)
    violations["checkpoint_snapshots_missing"] = sum(1 for i in checkpoints.seen if i not in final)
    violations["checkpoint_snapshots_changed"] = len(checkpoints.changed) + sum(
        1 for i, digest in checkpoints.seen.items() if i in final and final[i] != digest
    )
    figures = {name: _scalar(db, sql) for name, sql in FIGURES.items()}
    figures["snapshot_reasons"] = dict(
        db.execute("SELECT reason, count(*) FROM snapshots_snapshot GROUP BY reason").fetchall()
    )
    figures["snapshot_runs"] = dict(
        db.execute(
            "SELECT outcome, count(*) FROM snapshots_snapshotrun GROUP BY outcome"
        ).fetchall()
    )
    figures["snapshot_rows_checked_across_checkpoints"] = len(checkpoints.seen)
    figures["checkpoints"] = checkpoints.taken
    return {"violations": violations, "figures": figures}
