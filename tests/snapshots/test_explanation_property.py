"""Property: for every snapshot, the events that explain it sum exactly to its change, and
totals equal the sum over distinct counted events, whatever the order, duplication,
lateness and timing of batches and snapshot runs."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import hypothesis
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregation.models import DayTotal
from aggregation.selectors import snapshot_contributions
from events.models import QuarantinedEvent, QuarantineStatus
from events.selectors.events import event_state
from events.services.quarantine import quarantine_accept, quarantine_reject
from snapshots.models import Snapshot
from snapshots.selectors.explanations import contribution_events
from tests.conftest import Pipeline, event
from tests.factories import MetricFactory

START = dt.datetime(2026, 11, 18, 0, 0, tzinfo=dt.UTC)

values = st.decimals(min_value=-500, max_value=500, places=2, allow_nan=False, allow_infinity=False)
raw_event = st.fixed_dictionaries(
    {
        "id": st.integers(0, 25),  # a small pool: repeats become duplicates or conflicts
        "day": st.integers(0, 1),
        "hour": st.integers(0, 23),
        "value": values,
        "metric": st.sampled_from(["default", "held"]),
        # Client-supplied arrival this many minutes before the post (as a replay sends):
        # events of one batch can then fall on both sides of a lateness limit.
        "arrived_earlier": st.one_of(st.none(), st.integers(0, 16 * 60)),
    }
)
step = st.one_of(
    st.tuples(st.just("post"), st.lists(raw_event, min_size=1, max_size=6)),
    st.tuples(st.just("snapshot"), st.none()),
    st.tuples(st.just("decide"), st.booleans()),
)
# Minutes the clock moves before each step: big enough that plans cross day ends and
# lateness limits (live -> provisional -> final) within a few steps.
clock_moves = st.sampled_from([0, 10, 90, 300, 420, 900, 1500])
plan_strategy = st.lists(st.tuples(step, clock_moves), min_size=2, max_size=25)


def _as_event(raw: dict, clock: dt.datetime) -> dict:
    when = START + dt.timedelta(days=raw["day"], hours=raw["hour"])
    fields = {"metric": raw["metric"]}
    if raw["arrived_earlier"] is not None:
        fields["arrival_time"] = max(when, clock - dt.timedelta(minutes=raw["arrived_earlier"]))
    return event(f"e{raw['id']}", when, str(raw["value"]), **fields)


def _run(plan, pipeline: Pipeline) -> None:
    clock = START + dt.timedelta(hours=20)
    for (kind, payload), minutes in plan:
        clock += dt.timedelta(minutes=minutes)
        if kind == "post":
            eligible = [_as_event(raw, clock) for raw in payload]
            pipeline.post([e for e in eligible if e["event_time"] <= clock.isoformat()], at=clock)
        elif kind == "snapshot":
            pipeline.snapshot(at=clock)
        else:
            held = list(
                QuarantinedEvent.objects.filter(status=QuarantineStatus.HELD).values_list(
                    "pk", flat=True
                )
            )
            decide = quarantine_accept if payload else quarantine_reject
            decide(event_pks=held, decided_by_id=None, reason="property test", now=clock)
    pipeline.snapshot(at=clock + dt.timedelta(minutes=1))


def _check_invariants() -> None:
    by_day: dict[int, list[Snapshot]] = defaultdict(list)
    for snapshot in Snapshot.objects.order_by("day_total_id", "sequence"):
        contributions = snapshot_contributions(
            day_total_id=snapshot.day_total_id, sequence=snapshot.sequence
        )
        explained = list(contribution_events(contributions))
        assert sum((e.value for e in explained), Decimal(0)) == snapshot.change
        assert len(explained) == snapshot.change_events
        assert all(event_state(e).snapshot == snapshot.sequence for e in explained)
        by_day[snapshot.day_total_id].append(snapshot)
    for day_total in DayTotal.objects.all():
        counted = [
            e
            for e in day_total.events.select_related(
                "batch", "day_total", "quarantine__contribution"
            )
            if event_state(e).status == "applied"
        ]
        assert day_total.value == sum((e.value for e in counted), Decimal(0))
        assert day_total.event_count == len(counted)
        snapshots = by_day.get(day_total.pk, [])
        assert [s.sequence for s in snapshots] == list(range(1, len(snapshots) + 1))
        running = Decimal(0)
        for snapshot in snapshots:
            running += snapshot.change
            assert snapshot.value == running
        if snapshots:
            assert snapshots[-1].value == day_total.value  # a final run covered everything


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plan_strategy)
def test_every_snapshot_change_is_explained_by_its_events(plan):
    with transaction.atomic():
        MetricFactory(
            name="held", too_late_policy="quarantine", allowed_lateness=dt.timedelta(hours=6)
        )
        _run(plan, Pipeline())
        _check_invariants()
        hypothesis.event(f"quarantined: {QuarantinedEvent.objects.exists()}")
        hypothesis.event(f"restatement: {Snapshot.objects.filter(reason='restatement').exists()}")
        hypothesis.event(f"late_data: {Snapshot.objects.filter(reason='late_data').exists()}")
        transaction.set_rollback(True)
