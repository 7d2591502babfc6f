"""The what-changed page: the events behind one snapshot, grouped into on time, late and
restatement, with source and lateness, adding up to the change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from aggregation.models import DayTotal
from aggregation.selectors import snapshot_contributions
from events.models import QuarantinedEvent
from events.services.quarantine import quarantine_accept
from snapshots.models import Snapshot
from snapshots.selectors.explanations import ChangeGroup, change_group_sums
from tests.conftest import T0, event
from tests.factories import MetricFactory
from tests.pages.conftest import DAY, DAY_END, DAY_URL, FINAL_AT
from tests.pages.test_dashboard import _cells, _text

pytestmark = pytest.mark.django_db


def _group_sums(snapshot: Snapshot) -> dict[ChangeGroup, tuple[int, Decimal]]:
    day_total = DayTotal.objects.select_related("metric").get(pk=snapshot.day_total_id)
    contributions = snapshot_contributions(day_total_id=day_total.pk, sequence=snapshot.sequence)
    return {
        s.group: (s.events, s.value)
        for s in change_group_sums(day_total=day_total, contributions=contributions)
    }


def _assert_every_snapshot_adds_up() -> None:
    for snapshot in Snapshot.objects.all():
        sums = _group_sums(snapshot)
        assert sum(value for _, value in sums.values()) == snapshot.change, snapshot
        assert sum(events for events, _ in sums.values()) == snapshot.change_events, snapshot
        assert sums[ChangeGroup.RESTATEMENT][0] == snapshot.too_late_events, snapshot


def _section(html: str, group: str) -> str:
    return html.split(f'id="{group}"', 1)[1].split("</section>", 1)[0]


def test_late_event_is_listed_with_its_source_and_lateness_and_adds_up(client, viewer, history):
    client.force_login(viewer)

    html = client.get(f"{DAY_URL}snapshots/2/").content.decode()
    late = _cells(_section(html, "late"))
    sums = _cells(html.split('id="sum-heading"', 1)[1])

    assert "Changed by +7.00 because 1 late event arrived." in html
    assert "From 15.00 to 22.00." in _text(html)
    assert late == [["c", "20 Nov 12:00 UTC", "21 Nov 02:00 UTC", "14 h", "mobile", "7.00"]]
    assert "None." in _section(html, "on_time")
    assert "None." in _section(html, "restatement")
    assert [row[:2] for row in sums] == [["0", "+0.00"], ["1", "+7.00"], ["0", "+0.00"]]
    total = _text(html.split("<tfoot>", 1)[1].split("</tfoot>", 1)[0])
    assert total == "Total 1 +7.00 ✓ equals the change of +7.00"


def test_first_snapshot_lists_its_events_on_time(client, viewer, history):
    client.force_login(viewer)

    html = client.get(f"{DAY_URL}snapshots/1/").content.decode()
    on_time = _cells(_section(html, "on_time"))

    assert sorted(row[0] for row in on_time) == ["a", "b"]
    assert "On time: 2 events, +15.00" in html


def test_too_late_event_is_listed_as_a_restatement(client, viewer, history):
    client.force_login(viewer)

    html = client.get(f"{DAY_URL}snapshots/3/").content.decode()
    restated = _cells(_section(html, "restatement"))

    assert [row[0] for row in restated] == ["d"]
    assert restated[0][4] == "partner"
    assert "After final: 1 event, +3.00" in html
    _assert_every_snapshot_adds_up()


def test_one_batch_split_between_on_time_and_late(client, viewer, pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.post(
        [
            event("on-time", T0, "2", arrival_time=DAY_END - dt.timedelta(hours=1)),
            event("late", T0, "4"),
        ],
        at=DAY_END + dt.timedelta(hours=1),
    )
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=2))
    client.force_login(viewer)

    html = client.get(f"{DAY_URL}snapshots/2/").content.decode()

    assert [row[0] for row in _cells(_section(html, "on_time"))] == ["on-time"]
    assert [row[0] for row in _cells(_section(html, "late"))] == ["late"]
    assert "Changed by +6.00 because 2 events arrived, 1 of them late." in html
    _assert_every_snapshot_adds_up()


def test_one_batch_split_between_late_and_too_late(client, viewer, pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.post(
        [
            event("late", T0, "2", arrival_time=DAY_END + dt.timedelta(hours=2)),
            event("too-late", T0, "4"),
        ],
        at=FINAL_AT + dt.timedelta(hours=1),
    )
    pipeline.snapshot(at=FINAL_AT + dt.timedelta(hours=2))
    client.force_login(viewer)

    html = client.get(f"{DAY_URL}snapshots/2/").content.decode()

    assert [row[0] for row in _cells(_section(html, "late"))] == ["late"]
    assert [row[0] for row in _cells(_section(html, "restatement"))] == ["too-late"]
    _assert_every_snapshot_adds_up()


def test_events_accepted_from_quarantine_explain_the_restatement(client, viewer, pipeline):
    MetricFactory(name="held", too_late_policy="quarantine")
    pipeline.post([event("a", T0, "1", metric="held")], at=T0)
    pipeline.snapshot(at=FINAL_AT + dt.timedelta(hours=1))  # the final snapshot
    pipeline.post(
        [event("kept", T0, "8", metric="held"), event("dropped", T0, "50", metric="held")],
        at=FINAL_AT + dt.timedelta(hours=2),
    )
    kept = QuarantinedEvent.objects.get(event__event_id="kept")
    quarantine_accept(
        event_pks=[kept.pk],
        decided_by_id=None,
        reason="checked",
        now=FINAL_AT + dt.timedelta(hours=3),
    )
    pipeline.snapshot(at=FINAL_AT + dt.timedelta(hours=4))
    client.force_login(viewer)

    html = client.get(f"/days/held/{DAY.isoformat()}/snapshots/2/").content.decode()

    assert [row[0] for row in _cells(_section(html, "restatement"))] == ["kept"]
    assert "dropped" not in html
    assert "✓ equals the change of +8.00" in _text(html)
    _assert_every_snapshot_adds_up()


def test_many_events_are_paginated_per_group(client, viewer, pipeline):
    pipeline.post([event(f"e{n:03}", T0, "1") for n in range(60)], at=T0)
    pipeline.snapshot(at=T0)
    client.force_login(viewer)

    first = client.get(f"{DAY_URL}snapshots/1/").content.decode()
    second = client.get(f"{DAY_URL}snapshots/1/", {"on_time-page": 2}).content.decode()

    assert len(_cells(_section(first, "on_time"))) == 50
    assert len(_cells(_section(second, "on_time"))) == 10
    assert "On time: 60 events, +60.00" in first
    assert "✓ equals the change of +60.00" in _text(second)


def test_final_snapshot_without_events_says_nothing_changed(client, viewer, pipeline):
    pipeline.post([event("a", T0, "1")], at=T0)
    pipeline.snapshot(at=T0)
    pipeline.snapshot(at=FINAL_AT)
    client.force_login(viewer)

    day = client.get(DAY_URL).content.decode()
    html = client.get(f"{DAY_URL}snapshots/2/").content.decode()

    assert "No new events: the value did not change and is now settled." in html
    assert "✓ equals the change of +0.00" in _text(html)
    assert f'href="{DAY_URL}snapshots/2/"' not in day  # nothing to explain: no link
