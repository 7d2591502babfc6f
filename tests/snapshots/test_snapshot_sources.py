"""Per-source slices of snapshots: written for every source of a snapshotted day, and as
immutable as the snapshots themselves."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from snapshots.models import ImmutableSnapshotError, SnapshotSource
from tests.conftest import T0, event

HOUR = dt.timedelta(hours=1)
pytestmark = pytest.mark.django_db


def _slices(sequence: int) -> dict[str, tuple[Decimal, Decimal]]:
    rows = SnapshotSource.objects.filter(sequence=sequence)
    return {row.source: (row.value, row.change) for row in rows}


def test_every_source_of_the_day_is_in_each_snapshot_with_its_change(pipeline):
    pipeline.post([event("a", T0, "7", source="web"), event("b", T0, "2", source="")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    pipeline.post([event("c", T0, "1", source="web")], at=T0 + HOUR)
    pipeline.snapshot(at=T0 + 2 * HOUR)

    assert _slices(1) == {"web": (Decimal(7), Decimal(7)), "": (Decimal(2), Decimal(2))}
    assert _slices(2) == {"web": (Decimal(8), Decimal(1)), "": (Decimal(2), Decimal(0))}


@pytest.mark.parametrize(
    "statement",
    ["UPDATE snapshots_snapshotsource SET value = 0", "DELETE FROM snapshots_snapshotsource"],
)
def test_the_database_refuses_to_change_a_slice(pipeline, statement):
    pipeline.post([event("a", T0, "7", source="web")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)

    with (
        pytest.raises(IntegrityError, match="on snapshots_snapshotsource is refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert SnapshotSource.objects.get().value == Decimal(7)


def test_the_model_refuses_to_change_a_slice(pipeline):
    pipeline.post([event("a", T0, "7", source="web")], at=T0)
    pipeline.snapshot(at=T0 + HOUR)
    row = SnapshotSource.objects.get()

    with pytest.raises(ImmutableSnapshotError):
        row.save()
    with pytest.raises(ImmutableSnapshotError):
        SnapshotSource.objects.update(value=0)
