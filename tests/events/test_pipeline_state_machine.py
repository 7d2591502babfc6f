"""Stateful property test: random sequences of ingest (new, duplicate, conflicting events),
applies in any order (twice, or crashing part-way; one batch alone, or coalesced with other
waiting batches under random caps), snapshot runs at arbitrary times and quarantine
decisions, checked after every step against a small in-memory model."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aggregation.models import Contribution, DaySourceTotal, DayTotal
from events.models import (
    Conflict,
    Event,
    IngestBatch,
    IngestChannel,
    QuarantinedEvent,
    QuarantineStatus,
)
from events.selectors.events import event_state
from events.services import apply as services
from events.services.apply import batch_apply, batches_apply_coalesced
from events.services.ingest import events_ingest
from events.services.quarantine import quarantine_accept, quarantine_reject
from snapshots.models import RunTrigger, Snapshot
from snapshots.services.run import snapshot_run_execute
from tests.factories import MetricFactory

START = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
LATENESS = {"default": dt.timedelta(days=1), "held": dt.timedelta(hours=6)}
QUARANTINED_METRICS = {"held"}


class Crash(Exception):
    """A worker dying part-way through an apply."""


@dataclass(frozen=True)
class Content:
    metric: str
    event_time: dt.datetime
    value: Decimal
    source: str

    @property
    def day(self) -> dt.date:
        return self.event_time.date()


@dataclass
class ModelEvent:
    content: Content
    arrival: dt.datetime
    batch: int
    state: str = "received"  # received | counted | held | rejected


@dataclass
class ModelDay:
    value: Decimal = Decimal(0)
    count: int = 0
    pending: bool = False  # counted something since its last snapshot
    finalized: bool = False
    snapshots: list[Decimal] = field(default_factory=list)


def day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


event_specs = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 15),  # a small pool: repeats are duplicates or conflicts
            "copy_stored": st.booleans(),  # a repeat with the stored content: a duplicate
            "day": st.integers(0, 2),
            "hour": st.integers(0, 23),
            "cents": st.integers(-10_000, 10_000),
            "metric": st.sampled_from(["default", "held"]),
            "source": st.sampled_from(["", "web"]),
            # None: the server's receive time. Minutes before now, or "edge": a replayed
            # event that arrived just before its day turned final (counted unless the day
            # already had its final snapshot).
            "arrived_earlier": st.none() | st.integers(0, 20 * 60) | st.just("edge"),
        }
    ),
    min_size=1,
    max_size=5,
)
# Steps of events.services.apply.batch_apply, in order: after the claim and the day totals'
# locks, after too-late events are held, after contributions and totals are written.
CRASH_POINTS = ["_batch_days_locked", "_hold_too_late", "ledger_append_grouped"]
# A coalescing apply has one more: after the other waiting batches are claimed.
COALESCED_CRASH_POINTS = ["_claim_others", *CRASH_POINTS]
# Caps of a coalescing apply: batches in all, events in all (the batch asked for always).
coalesce_caps = st.tuples(st.sampled_from([1, 2, 3, 100]), st.sampled_from([1, 4, 8, 10**6]))


class PipelineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Every example starts from the same rows and leaves nothing behind.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        MetricFactory(name="held", too_late_policy="quarantine", allowed_lateness=LATENESS["held"])
        self.clock = START + dt.timedelta(hours=20)
        self.events: dict[str, ModelEvent] = {}
        self.batches: dict[int, bool] = {}  # batch id -> applied
        self.batch_sizes: dict[int, int] = {}  # batch id -> events accepted
        self.days: dict[tuple[str, dt.date], ModelDay] = defaultdict(ModelDay)
        self.conflicts = 0
        self.snapshot_rows: dict[int, tuple] = {}

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- rules -----------------------------------------------------------------------------

    @initialize()
    def counted_events_on_every_day(self) -> None:
        """Start with counted events on each day of both metrics, so that days turn final
        within a few steps and late, too-late and quarantined events are common."""
        specs = [
            {"id": 100 + n, "copy_stored": False, "day": day, "hour": 1, "cents": 100,
             "metric": metric, "source": "", "arrived_earlier": None}
            for n, (day, metric) in enumerate(
                (day, metric) for day in range(2) for metric in ("default", "held")
            )
        ]  # fmt: skip
        self.ingest(specs)
        for batch_id in sorted(self.batches):
            self._apply(batch_id)

    @rule(specs=event_specs)
    def post(self, specs: list[dict]) -> None:
        """Ingest and apply at once: the usual path."""
        before = set(self.batches)
        self.ingest(specs)
        for batch_id in sorted(set(self.batches) - before):
            self._apply(batch_id)

    @rule(minutes=st.sampled_from([0, 10, 90, 300, 420, 900, 1500]))
    def advance_clock(self, minutes: int) -> None:
        self.clock += dt.timedelta(minutes=minutes)

    @rule(specs=event_specs)
    def ingest(self, specs: list[dict]) -> None:
        raw_events, expected = self._raw_events(specs)
        result = events_ingest(
            raw_events=raw_events, received_at=self.clock, channel=IngestChannel.API, enqueue=False
        )
        assert (result.accepted, result.duplicates, result.conflicts) == (
            len(expected["new"]),
            expected["duplicates"],
            expected["conflicts"],
        )
        self.conflicts += expected["conflicts"]
        if result.batch_id is not None:
            self.batches[result.batch_id] = not expected["new"]
            self.batch_sizes[result.batch_id] = len(expected["new"])
        for event_id, (content, arrival) in expected["new"].items():
            self.events[event_id] = ModelEvent(content, arrival, result.batch_id)

    @rule(batches=st.lists(event_specs, min_size=2, max_size=4))
    def ingest_burst(self, batches: list[list[dict]]) -> None:
        """Several batches arrive before any is applied: work for a coalescing apply."""
        for specs in batches:
            self.ingest(specs)

    @rule(data=st.data())
    def apply(self, data: st.DataObject) -> None:
        """Any batch, in any order, applied or not yet (a redelivery)."""
        if not self.batches:
            return
        self._apply(data.draw(st.sampled_from(sorted(self.batches))))

    def _apply(self, batch_id: int) -> None:
        result = batch_apply(batch_id=batch_id, now=self.clock)
        assert result.applied == (not self.batches[batch_id])
        if result.applied:
            self._model_apply(batch_id)

    @rule(data=st.data(), point=st.sampled_from(CRASH_POINTS))
    def apply_crashing(self, data: st.DataObject, point: str) -> None:
        """The worker dies after a step of the apply: the transaction is rolled back, so
        nothing may change, and the batch must still be applicable later."""
        unapplied = sorted(batch for batch, applied in self.batches.items() if not applied)
        if not unapplied:
            return
        batch_id = data.draw(st.sampled_from(unapplied))
        with _crash_after(point), pytest.raises(Crash):
            batch_apply(batch_id=batch_id, now=self.clock)

    @precondition(lambda self: not all(self.batches.values()))
    @rule(data=st.data(), caps=coalesce_caps)
    def apply_coalesced(self, data: st.DataObject, caps: tuple[int, int]) -> None:
        """The apply task's way: the batch asked for and, if it was waiting, the other
        waiting batches, oldest first, within the caps, all in one transaction. Mostly a
        waiting batch; sometimes any (a redelivery, or one another apply took along)."""
        unapplied = sorted(batch for batch, applied in self.batches.items() if not applied)
        redelivery = data.draw(st.integers(0, 3)) == 0
        batch_id = data.draw(st.sampled_from(sorted(self.batches) if redelivery else unapplied))
        max_batches, max_events = caps
        expected = self._coalesced_claim(batch_id, max_batches, max_events)
        result = batches_apply_coalesced(
            batch_id=batch_id, now=self.clock, max_batches=max_batches, max_events=max_events
        )
        assert result.applied == bool(expected)
        assert list(result.batch_ids) == expected
        for claimed in expected:
            self._model_apply(claimed)

    @rule(data=st.data(), caps=coalesce_caps, point=st.sampled_from(COALESCED_CRASH_POINTS))
    def apply_coalesced_crashing(
        self, data: st.DataObject, caps: tuple[int, int], point: str
    ) -> None:
        """A coalescing apply dies after one of its steps: every batch it claimed rolls
        back with it, nothing may change, and all of them can still be applied later."""
        unapplied = sorted(batch for batch, applied in self.batches.items() if not applied)
        if not unapplied:
            return
        batch_id = data.draw(st.sampled_from(unapplied))
        max_batches, max_events = caps
        with _crash_after(point), pytest.raises(Crash):
            batches_apply_coalesced(
                batch_id=batch_id, now=self.clock, max_batches=max_batches, max_events=max_events
            )

    def _coalesced_claim(self, batch_id: int, max_batches: int, max_events: int) -> list[int]:
        """Which batches a coalescing apply takes: none if the one asked for was applied;
        else it, then the other waiting ones in the order they arrived, while both caps
        hold (the first that would pass the event cap ends the list)."""
        if self.batches[batch_id]:
            return []
        claimed, events = [batch_id], self.batch_sizes[batch_id]
        waiting = sorted(b for b, applied in self.batches.items() if not applied and b != batch_id)
        for other in waiting[: max_batches - 1]:
            events += self.batch_sizes[other]
            if events > max_events:
                break
            claimed.append(other)
        return claimed

    @rule()
    def snapshot(self) -> None:
        run = snapshot_run_execute(now=self.clock, trigger=RunTrigger.MANUAL)
        assert run.days_snapshotted == self._model_snapshot()

    @rule(accept=st.booleans())
    def decide_quarantine(self, accept: bool) -> None:
        held = [event_id for event_id, event in self.events.items() if event.state == "held"]
        pks = list(Event.objects.filter(event_id__in=held).values_list("pk", flat=True))
        decide = quarantine_accept if accept else quarantine_reject
        assert decide(event_pks=pks, decided_by_id=None, reason="model", now=self.clock) == len(
            held
        )
        for event_id in held:
            event = self.events[event_id]
            event.state = "counted" if accept else "rejected"
            if accept:
                self._count(event)

    # --- the model -------------------------------------------------------------------------

    def _raw_events(self, specs: list[dict]) -> tuple[list[dict], dict]:
        raw_events: list[dict] = []
        seen: dict[str, Content] = {}
        expected = {"new": {}, "duplicates": 0, "conflicts": 0}
        for spec in specs:
            event_id = f"e{spec['id']}"
            stored = self.events.get(event_id)
            content = self._content(spec)
            if spec["copy_stored"] and stored is not None:
                content = stored.content
            arrival = self._arrival(content, spec["arrived_earlier"])
            raw_events.append(_as_raw(event_id, content, arrival, spec["arrived_earlier"]))
            # A repeat inside the batch is compared with its first occurrence; that one
            # with what is stored.
            earlier = seen.get(event_id) or (stored.content if stored is not None else None)
            seen.setdefault(event_id, content)
            if earlier is None:
                expected["new"][event_id] = (content, arrival)
            elif earlier == content:
                expected["duplicates"] += 1
            else:
                expected["conflicts"] += 1
        return raw_events, expected

    def _arrival(self, content: Content, arrived_earlier: int | str | None) -> dt.datetime:
        if arrived_earlier is None:
            return self.clock
        if arrived_earlier == "edge":
            final_at = day_end(content.day) + LATENESS[content.metric]
            latest = final_at - dt.timedelta(minutes=1)
        else:
            latest = self.clock - dt.timedelta(minutes=arrived_earlier)
        return max(content.event_time, min(latest, self.clock))

    def _content(self, spec: dict) -> Content:
        event_time = START + dt.timedelta(days=spec["day"], hours=spec["hour"])
        return Content(
            metric=spec["metric"],
            event_time=min(event_time, self.clock),
            value=Decimal(spec["cents"]) / 100,
            source=spec["source"],
        )

    def _model_apply(self, batch_id: int) -> None:
        self.batches[batch_id] = True
        for event in self.events.values():
            if event.batch != batch_id:
                continue
            content = event.content
            day = self.days[(content.metric, content.day)]
            final_at = day_end(content.day) + LATENESS[content.metric]
            too_late = day.finalized or event.arrival >= final_at
            if too_late and content.metric in QUARANTINED_METRICS:
                event.state = "held"
            else:
                event.state = "counted"
                self._count(event)

    def _count(self, event: ModelEvent) -> None:
        day = self.days[(event.content.metric, event.content.day)]
        day.value += event.content.value
        day.count += 1
        day.pending = True

    def _model_snapshot(self) -> int:
        written = 0
        for (metric, date), day in self.days.items():
            final = self.clock >= day_end(date) + LATENESS[metric]
            if not day.pending and not (final and not day.finalized and day.snapshots):
                continue
            day.snapshots.append(day.value)
            day.pending = False
            day.finalized = day.finalized or final
            written += 1
        return written

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def totals_match_the_model_and_the_contributions(self) -> None:
        for day_total in DayTotal.objects.select_related("metric"):
            day = self.days.get((day_total.metric.name, day_total.day), ModelDay())
            assert (day_total.value, day_total.event_count) == (day.value, day.count)
            contributed = sum(
                Contribution.objects.filter(day_total=day_total).values_list("value", flat=True),
                Decimal(0),
            )
            assert contributed == day_total.value

    @invariant()
    def source_totals_match_the_model(self) -> None:
        """Each source's slice of a day holds its counted events, whether its batches were
        applied alone or together (several batches adding to one source in one apply)."""
        expected: dict[tuple[str, dt.date, str], tuple[Decimal, int]] = {}
        for event in self.events.values():
            if event.state == "counted":
                key = (event.content.metric, event.content.day, event.content.source)
                value, count = expected.get(key, (Decimal(0), 0))
                expected[key] = (value + event.content.value, count + 1)
        stored = {
            (row.metric.name, row.day, row.source): (row.value, row.event_count)
            for row in DaySourceTotal.objects.select_related("metric")
        }
        assert stored == expected

    @invariant()
    def every_event_has_the_state_the_model_expects(self) -> None:
        expected = {"received": "received", "counted": "applied", "held": "quarantined"}
        expected["rejected"] = "rejected_too_late"
        stored = Event.objects.select_related("batch", "day_total", "quarantine__contribution")
        states = {event.event_id: event_state(event).status for event in stored}
        assert states == {key: expected[event.state] for key, event in self.events.items()}
        unapplied = set(IngestBatch.objects.filter(status="received").values_list("pk", flat=True))
        assert unapplied == {batch for batch, applied in self.batches.items() if not applied}
        held = QuarantinedEvent.objects.filter(status=QuarantineStatus.HELD).count()
        assert held == sum(1 for event in self.events.values() if event.state == "held")
        assert Conflict.objects.count() == self.conflicts

    @invariant()
    def snapshots_match_the_model_and_never_change(self) -> None:
        rows = Snapshot.objects.select_related("metric").order_by("day_total_id", "sequence")
        by_day: dict[tuple[str, dt.date], list[Decimal]] = defaultdict(list)
        for snapshot in rows:
            by_day[(snapshot.metric.name, snapshot.day)].append(snapshot.value)
            assert snapshot.sequence == len(by_day[(snapshot.metric.name, snapshot.day)])
            row = (snapshot.sequence, snapshot.value, snapshot.change, snapshot.reason)
            assert self.snapshot_rows.setdefault(snapshot.pk, row) == row
        assert dict(by_day) == {
            key: day.snapshots for key, day in self.days.items() if day.snapshots
        }


def _as_raw(event_id: str, content: Content, arrival: dt.datetime, supplied: object) -> dict:
    raw = {
        "event_id": event_id,
        "event_time": content.event_time.isoformat(),
        "value": str(content.value),
        "metric": content.metric,
        "source": content.source,
    }
    if supplied is not None:
        raw["arrival_time"] = arrival.isoformat()
    return raw


def _crash_after(point: str):
    """Let the step at `point` run, then raise, as a worker killed just after it would."""
    real_step = getattr(services, point)

    def step_then_crash(*args, **kwargs):
        real_step(*args, **kwargs)
        raise Crash

    return mock.patch.object(services, point, step_then_crash)


@pytest.mark.django_db
def test_the_pipeline_matches_its_model_under_any_sequence_of_operations():
    run_state_machine_as_test(
        PipelineMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
