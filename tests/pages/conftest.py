"""Named users for the pages, and a day with a history: on time, late, restated."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import Group

from common.access import VIEWER_GROUP
from tests.conftest import T0, event
from tests.factories import UserFactory

DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
FINAL_AT = DAY_END + dt.timedelta(days=1)  # the default metric's allowed lateness is 1 day
DAY_URL = f"/days/default/{DAY.isoformat()}/"


def viewer_group_ensure() -> Group:
    """The group the data migration creates; transactional tests flush it, so run the
    migration's own function again."""
    migration = importlib.import_module("snapshots.migrations.0004_viewer_group")
    migration.create_viewer_group(apps, None)
    return Group.objects.get(name=VIEWER_GROUP)


@pytest.fixture
def operator(db):
    """Staff, and nothing more: not a superuser, no explicit permissions."""
    return UserFactory(username="operator", is_staff=True)


@pytest.fixture
def viewer(db):
    user = UserFactory(username="viewer")
    user.groups.add(viewer_group_ensure())
    return user


@pytest.fixture
def outsider(db):
    """Logged in, in no group, not staff."""
    return UserFactory(username="outsider")


@pytest.fixture
def at():
    """Freeze the clock the pages read: at(instant)."""
    travellers = []

    def travel(instant: dt.datetime) -> None:
        traveller = time_machine.travel(instant, tick=False)
        traveller.start()
        travellers.append(traveller)

    yield travel
    for traveller in reversed(travellers):
        traveller.stop()


@pytest.fixture
def history(pipeline):
    """DAY: two events on time (+15, snapshot 1), one late (+7, snapshot 2), one too late
    (+3, snapshot 3, a restatement)."""
    pipeline.post([event("a", T0, "10", source="web"), event("b", T0, "5")], at=T0)
    pipeline.snapshot(at=DAY_END - dt.timedelta(hours=1))
    pipeline.post([event("c", T0, "7", source="mobile")], at=DAY_END + dt.timedelta(hours=2))
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=3))
    pipeline.post([event("d", T0, "3", source="partner")], at=FINAL_AT + dt.timedelta(hours=1))
    pipeline.snapshot(at=FINAL_AT + dt.timedelta(hours=2))
    return pipeline


@pytest.fixture(autouse=True)
def _short_ping(monkeypatch):
    """The operations page pings workers; none run in these tests, so do not wait long."""
    monkeypatch.setattr("web.views.PING_TIMEOUT_SECONDS", 0.05)
