"""The anomaly history kept in the process (snapshots/selectors/late_corrections.py) gives
what PostgreSQL's ranking gives, whatever the corrections, their days, the window's size
and the rollbacks in between."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregation.services.ledger import day_totals_ensure
from snapshots.models import RunOutcome, RunTrigger, Snapshot, SnapshotReason, SnapshotRun
from snapshots.selectors.history import late_corrections_ranked
from snapshots.selectors.late_corrections import _rank, late_corrections_window
from tests.factories import MetricFactory

DAY0 = dt.date(2026, 9, 1)
AT = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
cents = st.integers(-50_000, 50_000).map(lambda n: Decimal(n) / 100)
add = st.tuples(st.just("add"), st.integers(0, 7), cents, cents)
read = st.tuples(st.just("read"))
rolled_back = st.tuples(st.just("rolled back"), st.lists(add, min_size=1, max_size=4))
operations = st.lists(st.one_of(add, add, read, rolled_back), min_size=1, max_size=40)


class RolledBack(Exception):
    pass


def _ranks(pairs: list[tuple[Decimal, Decimal]]) -> list[Decimal | None]:
    return [_rank(change, value) for change, value in pairs]


@pytest.mark.django_db
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=operations, limit=st.integers(1, 4), per_day=st.integers(1, 3))
def test_the_window_answers_as_the_ranking_does(operations, limit, per_day):
    with transaction.atomic():
        metric = MetricFactory()
        other = MetricFactory()  # corrections of another metric count for neither
        days = day_totals_ensure(
            [(m.pk, DAY0 + dt.timedelta(days=n)) for m in (metric, other) for n in range(8)]
        )
        run = SnapshotRun.objects.create(
            trigger=RunTrigger.MANUAL, started_at=AT, outcome=RunOutcome.OK
        )
        sequence = iter(range(1, 10_000))

        def insert(day: int, change: Decimal, value: Decimal, of=metric) -> None:
            date = DAY0 + dt.timedelta(days=day)
            Snapshot.objects.create(
                day_total_id=days[(of.pk, date)], metric=of, day=date, sequence=next(sequence),
                taken_at=AT, run=run, value=value, event_count=1, late_event_count=1,
                change=change, change_events=1, late_events=1, status="provisional",
                reason=SnapshotReason.LATE_DATA,
            )  # fmt: skip

        def check() -> None:
            kept = late_corrections_window(metric_id=metric.pk, limit=limit, per_day=per_day)
            ranked = late_corrections_ranked(metric_id=metric.pk, limit=limit, per_day=per_day)
            assert _ranks(kept) == _ranks(ranked)

        for operation in operations:
            if operation[0] == "add":
                insert(*operation[1:])
                insert(operation[1], Decimal(1), Decimal(2), of=other)
            elif operation[0] == "read":
                check()
            else:  # corrections read inside a transaction that then rolls back
                try:
                    with transaction.atomic():
                        for _, day, change, value in operation[1]:
                            insert(day, change, value)
                        check()
                        raise RolledBack
                except RolledBack:
                    pass
            check()
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_a_days_largest_correction_leaving_the_window_gives_way_to_the_next():
    metric = MetricFactory()
    days = day_totals_ensure([(metric.pk, DAY0)])
    run = SnapshotRun.objects.create(
        trigger=RunTrigger.MANUAL, started_at=AT, outcome=RunOutcome.OK
    )
    for sequence, (change, value) in enumerate(
        [("10", "11"), ("1", "12"), ("2", "14")], start=1
    ):  # ranks 10, then 1/11, then 2/12
        Snapshot.objects.create(
            day_total_id=days[(metric.pk, DAY0)], metric=metric, day=DAY0, sequence=sequence,
            taken_at=AT, run=run, value=Decimal(value), event_count=1, late_event_count=1,
            change=Decimal(change), change_events=1, late_events=1, status="provisional",
            reason=SnapshotReason.LATE_DATA,
        )  # fmt: skip
        kept = late_corrections_window(metric_id=metric.pk, limit=1, per_day=2)

    assert kept == [(Decimal("2"), Decimal("14"))]  # the first left the window of two
    assert kept == late_corrections_ranked(metric_id=metric.pk, limit=1, per_day=2)
