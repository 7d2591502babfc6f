"""The reading API sends as many queries for a long history as for a short one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import T0, event

pytestmark = pytest.mark.django_db


def _history(pipeline, days: int, snapshots_per_day: int) -> None:
    """`days` days, each moved and snapshotted `snapshots_per_day` times."""
    for round_index in range(snapshots_per_day):
        pipeline.post(
            [
                event(f"{days}-{round_index}-{n}", T0 - dt.timedelta(days=n), "1")
                for n in range(days)
            ],
            at=T0,
        )
        pipeline.snapshot(at=T0 + dt.timedelta(minutes=round_index))


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured.captured_queries)


PATHS = [
    "/api/days/",
    "/api/days/?metric=default&from=2026-01-01&to=2026-12-31",
    f"/api/days/default/{T0.date()}/",
    f"/api/days/default/{T0.date()}/?as_of={T0.date()}T13:00:00Z",
    f"/api/days/default/{T0.date()}/snapshots/2/events/",
]


@pytest.mark.parametrize("path", PATHS)
def test_day_pages_need_as_many_queries_for_a_long_history(api_client, pipeline, path):
    _history(pipeline, days=2, snapshots_per_day=2)
    api_client.get("/api/metrics/")  # a key's first use also notes last_used_at (one UPDATE)
    short = _queries(api_client, path)

    _history(pipeline, days=40, snapshots_per_day=4)
    long = _queries(api_client, path)

    assert long == short
