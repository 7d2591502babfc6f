"""The database refuses TRUNCATE on snapshots, as it refuses UPDATE and DELETE."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from tests.conftest import T0, event

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_truncate_on_snapshots_is_refused(pipeline):
    pipeline.post([event("a", T0)], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(hours=1))

    with transaction.atomic(), connection.cursor() as cursor:
        # What every session outside the test and benchmark databases has.
        cursor.execute("SET LOCAL snapagg.allow_truncate = 'off'")
        with pytest.raises(IntegrityError, match="immutable: TRUNCATE"):
            cursor.execute("TRUNCATE snapshots_snapshot CASCADE")

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM snapshots_snapshot")
        assert cursor.fetchone()[0] >= 1
