"""Property: for random events across sources and days, with snapshots, quarantine decisions
and late arrivals in between, the per-source slices of every snapshot sum to the day's
snapshot, each (snapshot, source) explanation sums to its change, and the aggregates as of
any time equal the sum of each day's snapshot at that time."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregation.models import DaySourceTotal, DayTotal, Metric
from aggregation.periods import GroupBy
from aggregation.selectors import snapshot_contributions
from events.models import QuarantinedEvent, QuarantineStatus
from events.services.quarantine import quarantine_accept, quarantine_reject
from snapshots.models import Snapshot, SnapshotSource
from snapshots.selectors.aggregates import aggregate_get
from snapshots.selectors.explanations import contribution_events
from tests.conftest import Pipeline, event
from tests.factories import MetricFactory

START = dt.datetime(2026, 11, 18, 0, 0, tzinfo=dt.UTC)
SOURCES = ["web", "app", "partner-7", ""]
ZERO = Decimal(0)

values = st.decimals(min_value=-500, max_value=500, places=2, allow_nan=False, allow_infinity=False)
raw_event = st.fixed_dictionaries(
    {
        "id": st.integers(0, 30),  # a small pool: repeats become duplicates or conflicts
        "day": st.integers(0, 2),
        "hour": st.integers(0, 23),
        "value": values,
        "metric": st.sampled_from(["default", "held"]),
        "source": st.sampled_from(SOURCES),
        "arrived_earlier": st.one_of(st.none(), st.integers(0, 16 * 60)),
    }
)
step = st.one_of(
    st.tuples(st.just("post"), st.lists(raw_event, min_size=1, max_size=8)),
    st.tuples(st.just("snapshot"), st.none()),
    st.tuples(st.just("decide"), st.booleans()),
)
clock_moves = st.sampled_from([0, 10, 90, 300, 420, 900, 1500])
plan_strategy = st.lists(st.tuples(step, clock_moves), min_size=2, max_size=25)


def _as_event(raw: dict, clock: dt.datetime) -> dict:
    when = START + dt.timedelta(days=raw["day"], hours=raw["hour"])
    fields = {"metric": raw["metric"], "source": raw["source"]}
    if raw["arrived_earlier"] is not None:
        fields["arrival_time"] = max(when, clock - dt.timedelta(minutes=raw["arrived_earlier"]))
    return event(f"e{raw['id']}", when, str(raw["value"]), **fields)


def _run(plan, pipeline: Pipeline) -> list[dt.datetime]:
    """Play the plan; return the times snapshots ran."""
    clock = START + dt.timedelta(hours=20)
    runs = []
    for (kind, payload), minutes in plan:
        clock += dt.timedelta(minutes=minutes)
        if kind == "post":
            eligible = [_as_event(raw, clock) for raw in payload]
            pipeline.post([e for e in eligible if e["event_time"] <= clock.isoformat()], at=clock)
        elif kind == "snapshot":
            pipeline.snapshot(at=clock)
            runs.append(clock)
        else:
            held = QuarantinedEvent.objects.filter(status=QuarantineStatus.HELD)
            decide = quarantine_accept if payload else quarantine_reject
            pks = list(held.values_list("pk", flat=True))
            decide(event_pks=pks, decided_by_id=None, reason="property test", now=clock)
    runs.append(clock + dt.timedelta(minutes=1))
    pipeline.snapshot(at=runs[-1])
    return runs


def _check_slices_of(snapshot: Snapshot, slices: list[SnapshotSource]) -> None:
    assert sum((s.value for s in slices), ZERO) == snapshot.value
    assert sum(s.event_count for s in slices) == snapshot.event_count
    assert sum((s.change for s in slices), ZERO) == snapshot.change
    assert sum(s.change_events for s in slices) == snapshot.change_events
    for row in slices:
        contributions = snapshot_contributions(
            day_total_id=snapshot.day_total_id, sequence=snapshot.sequence, source=row.source
        )
        explained = list(contribution_events(contributions, source=row.source))
        assert sum((e.value for e in explained), ZERO) == row.change
        assert len(explained) == row.change_events
        assert {e.source for e in explained} <= {row.source}


def _check_snapshots() -> None:
    slices_by_snapshot: dict[int, list[SnapshotSource]] = defaultdict(list)
    for row in SnapshotSource.objects.all():
        slices_by_snapshot[row.snapshot_id].append(row)
    running: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for snapshot in Snapshot.objects.order_by("day_total_id", "sequence"):
        slices = slices_by_snapshot[snapshot.pk]
        _check_slices_of(snapshot, slices)
        for row in slices:  # a source's value is the sum of its changes so far
            running[(snapshot.day_total_id, row.source)] += row.change
            assert row.value == running[(snapshot.day_total_id, row.source)]
    for day_total in DayTotal.objects.all():
        sources = DaySourceTotal.objects.filter(day_total=day_total)
        assert sum((s.value for s in sources), ZERO) == day_total.value
        assert sum(s.event_count for s in sources) == day_total.event_count


def _snapshot_value_at(metric: Metric, as_of: dt.datetime, source: str | None) -> Decimal:
    total = ZERO
    for day_total in DayTotal.objects.filter(metric=metric):
        snapshot = (
            Snapshot.objects.filter(day_total=day_total, taken_at__lte=as_of)
            .order_by("-sequence")
            .first()
        )
        if snapshot is None:
            continue
        if source is None:
            total += snapshot.value
        else:
            row = SnapshotSource.objects.filter(snapshot=snapshot, source=source).first()
            total += row.value if row else ZERO
    return total


def _check_aggregates(runs: list[dt.datetime]) -> None:
    first, last = START.date(), START.date() + dt.timedelta(days=2)
    for metric in Metric.objects.all():
        for as_of in [START, *runs]:
            answer = aggregate_get(
                metric=metric, day_from=first, day_to=last, now=runs[-1], as_of=as_of
            )
            assert answer.total.value == _snapshot_value_at(metric, as_of, None)
            by_source = aggregate_get(
                metric=metric,
                day_from=first,
                day_to=last,
                now=runs[-1],
                as_of=as_of,
                group_by=GroupBy.SOURCE,
            )
            assert sum((g.value for g in by_source.groups), ZERO) == answer.total.value
            for group in by_source.groups:
                assert group.value == _snapshot_value_at(metric, as_of, group.key)
        now_answer = aggregate_get(metric=metric, day_from=first, day_to=last, now=runs[-1])
        day_totals = DayTotal.objects.filter(metric=metric)
        assert now_answer.total.value == sum((d.value for d in day_totals), ZERO)


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plan_strategy)
def test_sources_sum_to_their_snapshots_and_aggregates_replay_the_snapshots(plan):
    with transaction.atomic():
        MetricFactory(
            name="held", too_late_policy="quarantine", allowed_lateness=dt.timedelta(hours=6)
        )
        runs = _run(plan, Pipeline())
        _check_snapshots()
        _check_aggregates(runs)
        transaction.set_rollback(True)
