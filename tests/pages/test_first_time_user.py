"""What a first-time user meets on the day and what-changed pages: a final day with a
correction waiting, and a client-sent arrival time shown as what was sent."""

from __future__ import annotations

import datetime as dt

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.conftest import T0, event
from tests.pages.conftest import DAY, DAY_END, DAY_URL, FINAL_AT
from tests.pages.test_dashboard import _text

pytestmark = pytest.mark.django_db


def _headline(html: str) -> str:
    return _text(html.split('class="headline"', 1)[1].split("</section>", 1)[0])


def _schedule(last_run_at: dt.datetime | None, minutes: int = 5) -> None:
    interval, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
    PeriodicTask.objects.update_or_create(
        task="snapshots.tasks.run_snapshots",
        defaults={"name": "snapshots", "interval": interval, "last_run_at": last_run_at},
    )


@pytest.fixture
def correction_waiting(pipeline):
    """A final day with a too-late event applied but not yet snapshotted."""
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=FINAL_AT + dt.timedelta(hours=1))
    pipeline.post([event("late-1", T0, "42")], at=FINAL_AT + dt.timedelta(hours=2))
    return pipeline


def test_final_day_with_a_correction_waiting_says_when_it_is_published(
    client, viewer, correction_waiting, at
):
    _schedule(last_run_at=FINAL_AT + dt.timedelta(hours=2, minutes=3))
    at(FINAL_AT + dt.timedelta(hours=2, minutes=4))
    client.force_login(viewer)

    html = client.get(DAY_URL).content.decode()

    headline = _headline(html)
    assert "Final: a correction is waiting for the next snapshot at 22 Nov 02:08 UTC" in (headline)
    assert "this value is settled" not in headline
    assert "Waiting to be published: late-1 (42.00)" in headline


def test_an_unknown_next_run_is_soon(client, viewer, correction_waiting, at):
    PeriodicTask.objects.filter(task="snapshots.tasks.run_snapshots").delete()
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    headline = _headline(client.get(DAY_URL).content.decode())

    assert "a correction is waiting for the next snapshot soon." in headline


def test_a_settled_final_day_names_no_waiting_events(client, viewer, correction_waiting, at):
    correction_waiting.snapshot(at=FINAL_AT + dt.timedelta(hours=3))
    at(FINAL_AT + dt.timedelta(hours=4))
    client.force_login(viewer)

    headline = _headline(client.get(DAY_URL).content.decode())

    assert "correction is waiting" not in headline
    assert "Waiting to be published" not in headline


def test_a_client_sent_arrival_time_is_shown_as_sent_next_to_the_receive_time(
    client, viewer, pipeline, at
):
    sent = DAY_END + dt.timedelta(minutes=5)
    pipeline.post([event("a", T0, "10")], at=T0)
    pipeline.snapshot(at=T0 + dt.timedelta(minutes=1))
    pipeline.post(
        [event("b", T0, "5", arrival_time=sent)], at=DAY_END + dt.timedelta(hours=2, minutes=30)
    )
    pipeline.snapshot(at=DAY_END + dt.timedelta(hours=3))
    at(DAY_END + dt.timedelta(hours=4))
    client.force_login(viewer)

    html = _text(client.get(f"/days/default/{DAY.isoformat()}/snapshots/2/").content.decode())

    assert "sent with arrival time 21 Nov 00:05 UTC ; received 21 Nov 02:30 UTC" in html


def test_the_dashboard_has_a_glossary_and_badges_carry_tooltips(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    html = client.get("/").content.decode()

    glossary = _text(html.split('id="glossary-heading"', 1)[1].split("</section>", 1)[0])
    for word in ["Live", "Provisional", "Final", "Restated", "Late", "After final"]:
        assert f" {word} " in f" {glossary} "
    assert 'class="badge badge-restated" title="Changed after it was final' in html


def test_one_word_per_idea_across_the_pages(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    pages = [
        client.get(url).content.decode()
        for url in ["/", DAY_URL, f"/days/default/{DAY.isoformat()}/snapshots/3/"]
    ]

    for html in pages:
        text = _text(html)
        for other_word in ["too-late", "too late", "Restatement", "Changed after the day was"]:
            assert other_word not in text


def test_the_day_page_says_what_changed_after_the_day_ended(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    headline = _headline(client.get(DAY_URL).content.decode())

    assert "At day end 15.00 → now 25.00 (+7.00 late, +3.00 after final)" in headline


def _csv_rows(response) -> list[list[str]]:
    import csv
    import io

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_dashboard_table_downloads_as_csv(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    html = client.get("/").content.decode()
    rows = _csv_rows(client.get("/", {"export": "csv"}))

    assert "Download these days as CSV" in html
    assert rows[0][:3] == ["Day", "Value", "Status"]
    assert rows[1][:4] == [
        "Fri 20 Nov 2026",
        "25.00",
        "Restated",
        "+10.00 · +7.00 late, +3.00 after final",
    ]
    assert len(rows) == 2


def test_a_days_snapshot_history_downloads_as_csv(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    rows = _csv_rows(client.get(DAY_URL, {"export": "csv"}))

    assert rows[0][0] == "#"
    assert [row[0] for row in rows[1:]] == ["3", "2", "1"]
    assert rows[1][1:4] == ["22 Nov 02:00 UTC", "25.00", "+3.00"]


def test_an_explanation_downloads_as_csv(client, viewer, history, at):
    at(FINAL_AT + dt.timedelta(hours=3))
    client.force_login(viewer)

    rows = _csv_rows(client.get(f"/days/default/{DAY.isoformat()}/snapshots/3/", {"export": "csv"}))

    assert rows[0][:2] == ["Group", "Event id"]
    assert rows[1][0] == "After final"
    assert rows[1][1] == "d"
    assert rows[1][-1] == "3.00"
