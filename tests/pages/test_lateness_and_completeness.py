"""What the pages say about lateness, completeness and reconcile (issue 3 figures shown)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import T0, event
from tests.pages.conftest import DAY, DAY_END, DAY_URL

pytestmark = pytest.mark.django_db
REFERENCE_DAY = DAY - dt.timedelta(days=2)
REFERENCE_END = DAY_END - dt.timedelta(days=2)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def arrivals(pipeline):
    """A final reference day whose events arrived 3, 2 and 1 h before its end and 1 h
    after it (so 75% were in by its end), and today with one event."""
    noon = dt.datetime.combine(REFERENCE_DAY, dt.time(12), tzinfo=dt.UTC)
    for n, hours in enumerate([-3, -2, -1, 1]):
        arrival = REFERENCE_END + hours * HOUR
        pipeline.post([event(f"r{n}", noon, "1", arrival_time=arrival)], at=arrival)
    pipeline.post([event("today", T0, "1")], at=T0)
    pipeline.snapshot(at=T0)
    return pipeline


def test_the_dashboard_shows_how_complete_a_live_day_probably_is(client, viewer, arrivals, at):
    at(DAY_END - dt.timedelta(minutes=30))
    client.force_login(viewer)

    page = client.get("/").content.decode()

    assert "Arrived so far" in page
    assert "≈ 75%" in page
    assert "Final: nothing more is expected." in page  # the reference day shows no estimate


def test_the_day_page_says_in_words_how_complete_it_probably_is(client, viewer, arrivals, at):
    at(DAY_END - dt.timedelta(minutes=30))
    client.force_login(viewer)

    today = client.get(DAY_URL).content.decode()
    reference = client.get(f"/days/default/{REFERENCE_DAY.isoformat()}/").content.decode()

    assert "About 75% of a day&#x27;s events have usually arrived by now" in today
    assert "have usually arrived by now" not in reference


def test_the_operations_page_shows_lateness_percentiles_and_a_histogram(
    client, operator, arrivals, at
):
    at(DAY_END)
    client.force_login(operator)

    page = client.get("/operations/").content.decode()

    assert "How late events arrive (last 30 days)" in page
    assert "5 events: half arrived within" in page
    assert "would have captured 99% of" in page
    assert "<caption>Events by lateness (default)</caption>" in page
    assert page.count('class="hbar"') == 7


def test_the_operations_page_shows_the_last_reconcile(client, operator, arrivals, at):
    at(DAY_END)
    client.force_login(operator)
    before = client.get("/operations/").content.decode()
    call_command("reconcile", stdout=open("/dev/null", "w"))  # noqa: SIM115

    after = client.get("/operations/").content.decode()

    assert "No reconcile has run yet" in before
    assert "No drift" in after
    assert "2 days recomputed from their events" in after


def test_the_operations_page_shows_drift_when_reconcile_found_some(client, operator, arrivals, at):
    from aggregation.models import DayTotal

    DayTotal.objects.filter(day=DAY).update(value=999)
    with pytest.raises(CommandError, match="drift"):
        call_command("reconcile", stdout=open("/dev/null", "w"))  # noqa: SIM115
    at(DAY_END)
    client.force_login(operator)

    page = client.get("/operations/").content.decode()

    assert "Drift found" in page
    assert "See the details" in page
