"""Quarantine review in the admin: the operator gives a reason; the services decide."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from aggregation.selectors import snapshot_contributions
from events.models import Event, QuarantinedEvent, QuarantineStatus
from snapshots.models import SnapshotReason
from snapshots.selectors.explanations import contribution_events
from tests.conftest import T0, event
from tests.factories import MetricFactory, UserFactory

pytestmark = pytest.mark.django_db
DAY = T0.date()
DAY_END = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
CHANGELIST = "admin:events_quarantinedevent_changelist"


@pytest.fixture
def held_history(pipeline):
    """A quarantine-policy day that turned final at 10, then three events too late."""
    MetricFactory(name="held", too_late_policy="quarantine", allowed_lateness=6 * HOUR)
    pipeline.post([event("on-time", T0, "10", metric="held")], at=T0)
    pipeline.snapshot(at=DAY_END + 7 * HOUR)
    late = [event(f"late-{n}", T0, str(n), metric="held") for n in (1, 2, 4)]
    pipeline.post(late, at=DAY_END + 8 * HOUR)
    return pipeline


def _held_pks(*event_ids: str) -> list[int]:
    return list(
        QuarantinedEvent.objects.filter(event__event_id__in=event_ids).values_list("pk", flat=True)
    )


def _decide(client, action: str, pks: list[int], **extra):
    return client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": pks, **extra}, follow=True
    )


def test_held_events_are_not_counted(held_history):
    total = held_history.total(DAY, "held")

    assert (total.value, total.event_count) == (Decimal(10), 1)
    assert QuarantinedEvent.objects.filter(status=QuarantineStatus.HELD).count() == 3


def test_the_accept_action_first_asks_the_operator_for_a_reason(held_history, client, operator):
    client.force_login(operator)

    page = _decide(client, "accept", _held_pks("late-1", "late-2"))

    assert page.status_code == 200
    assert b'name="reason"' in page.content
    assert b"late-1" in page.content
    assert b"late-2" in page.content
    assert b"restatement" in page.content
    assert not QuarantinedEvent.objects.exclude(status=QuarantineStatus.HELD).exists()


def test_a_decision_without_a_reason_is_refused(held_history, client, operator):
    client.force_login(operator)

    page = _decide(client, "reject", _held_pks("late-1"), decide="yes", reason="  ")

    assert b"This field is required" in page.content
    assert QuarantinedEvent.objects.get(event__event_id="late-1").status == QuarantineStatus.HELD


def test_accepting_in_the_admin_gives_a_restatement_explained_by_exactly_those_events(
    held_history, client, operator, api_client
):
    client.force_login(operator)

    _decide(
        client, "accept", _held_pks("late-1", "late-4"), decide="yes", reason="partner confirmed"
    )
    run = held_history.snapshot(at=DAY_END + 9 * HOUR)

    accepted = QuarantinedEvent.objects.filter(status=QuarantineStatus.ACCEPTED)
    assert {(e.event.event_id, e.decided_by, e.decision_reason) for e in accepted} == {
        ("late-1", operator, "partner confirmed"),
        ("late-4", operator, "partner confirmed"),
    }
    [_, restatement] = held_history.snapshots(DAY, "held")
    assert (restatement.run, restatement.reason) == (run, SnapshotReason.RESTATEMENT)
    assert (restatement.change, restatement.change_events) == (Decimal(5), 2)
    explained = contribution_events(
        snapshot_contributions(day_total_id=restatement.day_total_id, sequence=2)
    )
    assert {e.event_id for e in explained} == {"late-1", "late-4"}
    listed = api_client.get(f"/api/days/held/{DAY.isoformat()}/snapshots/2/events/").json()
    assert sorted(e["event_id"] for e in listed["results"]) == ["late-1", "late-4"]
    assert sum(Decimal(e["value"]) for e in listed["results"]) == restatement.change
    assert held_history.total(DAY, "held").restated


def test_rejecting_in_the_admin_keeps_the_events_on_record_and_uncounted(
    held_history, client, operator
):
    client.force_login(operator)

    page = _decide(client, "reject", _held_pks("late-2"), decide="yes", reason="duplicate file")

    assert b"Rejected 1 held events" in page.content
    rejected = QuarantinedEvent.objects.get(event__event_id="late-2")
    assert (rejected.status, rejected.decision_reason) == (
        QuarantineStatus.REJECTED,
        "duplicate file",
    )
    assert Event.objects.filter(event_id="late-2").exists()
    assert held_history.total(DAY, "held").value == Decimal(10)
    assert held_history.snapshot(at=DAY_END + 9 * HOUR).days_snapshotted == 0


def test_only_events_still_held_are_decided(held_history, client, operator):
    client.force_login(operator)
    _decide(client, "reject", _held_pks("late-2"), decide="yes", reason="first decision")

    _decide(client, "accept", _held_pks("late-1", "late-2"), decide="yes", reason="second")

    statuses = dict(QuarantinedEvent.objects.values_list("event__event_id", "status"))
    assert statuses == {
        "late-1": QuarantineStatus.ACCEPTED,
        "late-2": QuarantineStatus.REJECTED,
        "late-4": QuarantineStatus.HELD,
    }


def test_a_viewer_may_list_held_events_but_not_decide(held_history, client):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_quarantinedevent"))
    client.force_login(viewer)

    listing = client.get(reverse(CHANGELIST))
    _decide(client, "accept", _held_pks("late-1"), decide="yes", reason="not mine to decide")

    assert listing.status_code == 200
    assert b"late-1" in listing.content
    assert not QuarantinedEvent.objects.exclude(status=QuarantineStatus.HELD).exists()
