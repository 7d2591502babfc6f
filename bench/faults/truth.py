"""The independent checker: the load generator's own log is the ground truth.

What the generator sent and what each 202 answered (accepted, duplicates, conflicts, the
rejected indexes) decide what the database must hold; the application's event rows,
`day_total_id`s and contributions are not trusted. It checks that:

- each 202 adds up (accepted + duplicates + conflicts + rejected = events in the batch);
- every rejection is an invalid event the generator sent on purpose, and every invalid
  event sent was rejected;
- every acknowledged valid event is counted in the metric and on the day the generator
  chose (the event time's UTC date: the run's reporting time zone is UTC), with a value
  the generator sent for it: the first acknowledged one when the acknowledgements' order
  decides it, otherwise any of the versions sent;
- nothing is held in quarantine that the policy would not hold (only the quarantine
  metric, only on a day already final when the event was acknowledged), and every event
  of that metric that arrived after its day was final is held;
- each (metric, day) total and count equals the generator's own sum over its acknowledged
  events, less those held.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg

from bench.faults.load import AckLog

INVALID_VALUE = "NaN"  # how the generator makes an invalid event (load.plan_build)
DEFAULT_METRIC = "default"


@dataclass
class Expected:
    metric: str
    day: dt.date
    # value -> (first time sent, time acknowledged) of each acknowledgement with it
    versions: dict[Decimal, list[tuple[float, float]]] = field(default_factory=dict)
    arrival: dt.datetime | None = None  # client-supplied arrival time, if any
    first_sent: float = float("inf")
    last_acked: float = 0.0

    def winner(self) -> Decimal | None:
        """The value that must be stored: one version, or the version acknowledged before
        any other was first sent. None when the order is not known."""
        if len(self.versions) == 1:
            return next(iter(self.versions))
        for value, times in self.versions.items():
            acked = min(a for _, a in times)
            others = [s for v, ts in self.versions.items() if v != value for s, _ in ts]
            if acked < min(others):
                return value
        return None


def _parse_time(raw: str) -> dt.datetime:
    return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(dt.UTC)


def _expected_from_log(log: AckLog) -> tuple[dict[str, Expected], dict[str, int]]:
    violations = defaultdict(int)
    expected: dict[str, Expected] = {}
    for answer in log.answers:
        body = answer.body
        counted = sum(body.get(key, 0) for key in ("accepted", "duplicates", "conflicts"))
        if counted + body.get("rejected", 0) != len(answer.events):
            violations["answers_not_adding_up"] += 1
        rejected = {error["index"] for error in body.get("errors", [])}
        if len(rejected) != body.get("rejected", 0):
            violations["answers_not_adding_up"] += 1
        for index, payload in enumerate(answer.events):
            invalid = payload["value"] == INVALID_VALUE
            if index in rejected:
                violations["rejections_of_valid_events"] += not invalid
                continue
            if invalid:
                violations["invalid_events_accepted"] += 1
                continue
            event_time = _parse_time(payload["event_time"])
            item = expected.setdefault(
                payload["event_id"],
                Expected(metric=payload.get("metric") or DEFAULT_METRIC, day=event_time.date()),
            )
            item.versions.setdefault(Decimal(payload["value"]), []).append(
                (answer.first_sent, answer.acked_at)
            )
            if payload.get("arrival_time"):
                item.arrival = _parse_time(payload["arrival_time"])
            item.first_sent = min(item.first_sent, answer.first_sent)
            item.last_acked = max(item.last_acked, answer.acked_at)
    return expected, violations


_STORED = """
SELECT e.event_id, e.value, m.name, t.day, q.status
FROM events_event e
JOIN aggregation_daytotal t ON t.id = e.day_total_id
JOIN aggregation_metric m ON m.id = t.metric_id
LEFT JOIN events_quarantinedevent q ON q.event_id = e.id
"""
_TOTALS = """
SELECT m.name, t.day, t.value, t.event_count
FROM aggregation_daytotal t JOIN aggregation_metric m ON m.id = t.metric_id
"""


def truth_check(
    db: psycopg.Connection, log: AckLog, *, held_metric: str, held_lateness: dt.timedelta
) -> dict:
    """Violations (each must be 0) and figures, from the generator's log against the
    database's end state."""
    expected, violations = _expected_from_log(log)
    stored = {row[0]: row[1:] for row in db.execute(_STORED)}
    sums: dict[tuple[str, dt.date], list] = defaultdict(lambda: [Decimal(0), 0])
    figures = defaultdict(int)
    for event_id, item in expected.items():
        row = stored.get(event_id)
        if row is None:
            violations["acked_events_not_stored"] += 1
            continue
        value, metric, day, held = row
        if (metric, day) != (item.metric, item.day):
            violations["acked_events_on_the_wrong_metric_or_day"] += 1
        winner = item.winner()
        if winner is None:
            figures["conflicting_versions_order_unknown"] += 1
            if value not in item.versions:
                violations["acked_events_with_a_value_never_sent"] += 1
        elif value != winner:
            violations["acked_events_with_the_wrong_version"] += 1
        final_at = dt.datetime.combine(item.day + dt.timedelta(days=1), dt.time(), dt.UTC)
        final_at += held_lateness
        may_hold = item.metric == held_metric and final_at.timestamp() <= item.last_acked
        arrived = item.arrival.timestamp() if item.arrival else item.first_sent
        must_hold = item.metric == held_metric and arrived >= final_at.timestamp()
        if held and not may_hold:
            violations["held_against_the_policy"] += 1
        if must_hold and not held:
            violations["too_late_events_not_held"] += 1
        if held:
            figures["held_in_quarantine"] += 1
            continue
        figures["counted"] += 1
        total = sums[(item.metric, item.day)]
        total[0] += value if winner is None else winner
        total[1] += 1
    stored_totals = {(m, d): (v, n) for m, d, v, n in db.execute(_TOTALS)}
    for key in set(sums) | set(stored_totals):
        want = tuple(sums.get(key, (Decimal(0), 0)))
        have = stored_totals.get(key, (Decimal(0), 0))
        if (Decimal(have[0]), have[1]) != (want[0], want[1]):
            violations["day_totals_off_from_the_generators_sums"] += 1
            figures["events_off_in_day_totals"] += abs(have[1] - want[1])
    figures["acked_events"] = len(expected)
    figures["metric_days"] = len(sums)
    return {"violations": dict(violations), "figures": dict(figures)}


TRUTH_CHECKS = (
    "answers_not_adding_up",
    "rejections_of_valid_events",
    "invalid_events_accepted",
    "acked_events_not_stored",
    "acked_events_on_the_wrong_metric_or_day",
    "acked_events_with_a_value_never_sent",
    "acked_events_with_the_wrong_version",
    "held_against_the_policy",
    "too_late_events_not_held",
    "day_totals_off_from_the_generators_sums",
)


def truth_violations(result: dict) -> dict[str, int]:
    """Every check by name, 0 where nothing was found."""
    return {name: result["violations"].get(name, 0) for name in TRUTH_CHECKS}
