"""Fixtures for the archive tests: an archive folder per test, a metric whose raw events
are kept one day, and a day with on-time, late and restated events, final and snapshotted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from aggregation.models import Metric
from archive.selectors import cache_clear
from tests.conftest import Pipeline, event
from tests.factories import UserFactory, api_key_for

DAY = dt.date(2026, 11, 20)
DAY_START = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
# The day ends 11-21 00:00, is final a day later, and its raw events may go a day after.
ARCHIVE_AT = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)


def storages_with_archive(archive: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings

    return {**settings.STORAGES, "archive": archive}


@pytest.fixture(autouse=True)
def archive_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "archive"
    backend = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(folder)},
    }
    cache_clear()
    with override_settings(STORAGES=storages_with_archive(backend)):
        yield folder
    cache_clear()


@pytest.fixture
def kept_metric(db) -> Metric:
    Metric.objects.filter(is_default=True).update(raw_retention_days=1)
    return Metric.objects.get(is_default=True)


def day_events() -> list[dict[str, Any]]:
    return [
        event(f"e{n}", DAY_START + dt.timedelta(hours=n), f"{n}.25", source=f"s{n % 2}")
        for n in range(1, 6)
    ]


@pytest.fixture
def archived_day(kept_metric: Metric, pipeline: Pipeline) -> Pipeline:
    """Snapshot 1: five on-time events; snapshot 2: two late ones (after day end); then a
    restatement (too late, after final) and its snapshot. Final and snapshotted."""
    pipeline.post(day_events(), at=DAY_START + dt.timedelta(hours=10))
    pipeline.snapshot(DAY_START + dt.timedelta(hours=11))
    late = [event(f"late{n}", DAY_START + dt.timedelta(hours=20 + n), "3") for n in (1, 2)]
    pipeline.post(late, at=DAY_START + dt.timedelta(hours=30))
    pipeline.snapshot(DAY_START + dt.timedelta(hours=31))
    pipeline.snapshot(DAY_START + dt.timedelta(hours=49))  # final
    too_late = [event("restated1", DAY_START + dt.timedelta(hours=23), "7.5")]
    pipeline.post(too_late, at=DAY_START + dt.timedelta(hours=60))
    pipeline.snapshot(DAY_START + dt.timedelta(hours=61))
    return pipeline


@pytest.fixture
def operator_client(db) -> APIClient:
    user = UserFactory(username="ops", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    return client
