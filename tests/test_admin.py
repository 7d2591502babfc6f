from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.urls import reverse

from events.models import QuarantinedEvent, QuarantineStatus
from snapshots.models import Snapshot
from tests.conftest import T0, event
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db
DAY_END = dt.datetime.combine(T0.date() + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


@pytest.fixture
def history(pipeline):
    MetricFactory(name="held", too_late_policy="quarantine", allowed_lateness=dt.timedelta(hours=1))
    pipeline.post([event("a", T0, "1"), event("h", T0, "1", metric="held")], at=T0)
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=2))
    pipeline.post([event("late", T0, "5", metric="held")], at=DAY_END + dt.timedelta(hours=3))
    pipeline.post([event("a", T0, "2")], at=DAY_END + dt.timedelta(hours=3))  # a conflict


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label)
def test_every_admin_changelist_and_change_page_renders(client, operator, model):
    client.force_login(operator)
    opts = model._meta

    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))

    assert changelist.status_code == 200
    instance = model._default_manager.first()
    if instance is not None:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[instance.pk])
        assert client.get(url).status_code == 200


@pytest.mark.usefixtures("history")
def test_snapshots_are_read_only_in_the_admin(client, operator):
    client.force_login(operator)
    snapshot = Snapshot.objects.first()
    change_url = reverse("admin:snapshots_snapshot_change", args=[snapshot.pk])

    page = client.get(change_url)
    posted = client.post(change_url, {"value": "999"})
    deleted = client.post(
        reverse("admin:snapshots_snapshot_delete", args=[snapshot.pk]), {"post": "yes"}
    )

    assert b'name="value"' not in page.content
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert client.get(reverse("admin:snapshots_snapshot_add")).status_code == 403
    assert Snapshot.objects.get(pk=snapshot.pk).value == snapshot.value


@pytest.mark.usefixtures("history")
def test_events_are_searchable_by_id(client, operator):
    client.force_login(operator)

    page = client.get(reverse("admin:events_event_changelist"), {"q": "late"})

    assert page.context["cl"].result_count == 1


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("status", ["received", "applied", "quarantined", "rejected_too_late"])
def test_events_filter_by_status(client, operator, status):
    client.force_login(operator)

    page = client.get(reverse("admin:events_event_changelist"), {"status": status, "late": "yes"})

    assert page.status_code == 200


@pytest.mark.usefixtures("history")
def test_the_quarantine_accept_action_counts_held_events(client, operator, pipeline):
    client.force_login(operator)
    held = QuarantinedEvent.objects.get()

    client.post(
        reverse("admin:events_quarantinedevent_changelist"),
        {"action": "accept", "_selected_action": [held.pk], "decide": "yes", "reason": "checked"},
    )

    held.refresh_from_db()
    assert (held.status, held.decided_by) == (QuarantineStatus.ACCEPTED, operator)
    assert pipeline.total(T0.date(), "held").value == 6


def test_the_snapshot_admin_lists_newest_first_in_utc_with_readable_titles(
    client, operator, pipeline
):
    pipeline.post([event("a", T0, "33.99")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.post([event("b", T0, "1")], at=T0 + dt.timedelta(minutes=5))
    pipeline.snapshot(at=T0 + dt.timedelta(minutes=5))
    client.force_login(operator)

    html = client.get(reverse("admin:snapshots_snapshot_changelist")).content.decode()
    first = Snapshot.objects.select_related("metric").get(sequence=1)

    assert html.index("2026-11-20 12:05:00 UTC") < html.index("2026-11-20 12:00:00 UTC")
    assert str(first) == "default on 2026-11-20, snapshot #1 (33.99)"
    assert "33.990000" not in html
