"""The operations page: workers (and which source said so), backlog, snapshot runs,
schedules with links to the admin, and the two buttons."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from events.models import IngestBatch
from snapshots.models import RunOutcome, RunTrigger, Snapshot, SnapshotRun
from snapshots.services.run import SNAPSHOT_LOCK
from tests.conftest import T0, event
from tests.locks import advisory_lock_held_elsewhere
from tests.pages.test_dashboard import _cells, _text
from web.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def _section(html: str, heading: str) -> str:
    return _text(html.split(f'id="{heading}"', 1)[1].split("</section>", 1)[0])


@pytest.fixture
def ping(monkeypatch):
    """Set what a Celery ping answers: a list of hostnames, or an exception."""
    answer: dict = {"value": []}

    def fake_ping(*, timeout: float, expected: int = 0) -> list[str]:
        if isinstance(answer["value"], Exception):
            raise answer["value"]
        return answer["value"]

    monkeypatch.setattr("web.selectors.workers_ping", fake_ping)
    return lambda value: answer.update(value=value)


def _heartbeat(hostname: str, seen: dt.datetime) -> None:
    WorkerHeartbeat.objects.create(hostname=hostname, pid=1, started_at=seen, last_seen=seen)


def test_workers_answering_a_ping_are_counted_and_the_source_named(client, operator, ping):
    ping(["w1@host", "w2@host"])
    _heartbeat("w1@host", timezone.now())
    client.force_login(operator)

    workers = _section(client.get("/operations/").content.decode(), "workers-heading")

    assert "2 workers answering" in workers
    assert "Source: a Celery ping through the broker" in workers
    assert "w2@host ✓ yes — (no heartbeat)" in workers


def test_without_a_ping_answer_the_heartbeats_answer(client, operator, ping):
    ping([])
    _heartbeat("w1@host", timezone.now())
    _heartbeat("gone@host", timezone.now() - dt.timedelta(hours=1))
    client.force_login(operator)

    workers = _section(client.get("/operations/").content.decode(), "workers-heading")

    assert "1 worker alive by heartbeat" in workers
    assert "Source: the heartbeats workers write to the database" in workers
    assert "gone@host" not in workers


def test_a_broker_that_cannot_be_reached_is_reported(client, operator, ping):
    ping(ConnectionRefusedError("Connection refused"))
    client.force_login(operator)

    workers = _section(client.get("/operations/").content.decode(), "workers-heading")

    assert "No worker" in workers
    assert "the broker said: ConnectionRefusedError: Connection refused" in workers


def test_backlog_shows_waiting_events_and_the_oldest(client, operator, pipeline, ping):
    received = timezone.now() - dt.timedelta(minutes=7)
    pipeline.ingest([event("a", T0, "1"), event("b", T0, "2")], at=received)
    client.force_login(operator)

    backlog = _section(client.get("/operations/").content.decode(), "backlog-heading")

    assert "2 events are stored but not yet in the totals (1 batch)." in backlog
    assert "The oldest arrived 7 min ago" in backlog


def test_an_empty_backlog_says_so(client, operator, ping):
    client.force_login(operator)

    backlog = _section(client.get("/operations/").content.decode(), "backlog-heading")

    assert "Nothing waiting" in backlog


def test_the_last_twenty_snapshot_runs_are_listed_with_outcome_and_duration(client, operator, ping):
    for n in range(25):
        SnapshotRun.objects.create(
            trigger=RunTrigger.SCHEDULE,
            started_at=T0 + dt.timedelta(minutes=n),
            outcome=RunOutcome.FAILED if n == 24 else RunOutcome.OK,
            duration_ms="1500.000" if n == 23 else "12.345",
            days_snapshotted=n,
            error="OperationalError: the database went away" if n == 24 else "",
        )
    client.force_login(operator)

    html = client.get("/operations/").content.decode()
    rows = _cells(html.split('id="runs-heading"', 1)[1])

    assert len(rows) == 20
    assert rows[0][2] == "✗ Failed OperationalError: the database went away"
    assert rows[1][2] == "✓ Completed"
    assert rows[1][4] == "1.50 s"
    assert rows[2][4] == "12.3 ms"
    assert rows[0][1] == "Schedule"


def test_schedules_link_to_their_admin_page(client, operator, ping):
    client.force_login(operator)

    html = client.get("/operations/").content.decode()
    schedules = html.split('id="schedules-heading"', 1)[1]

    assert "Snapshot run" in schedules
    assert "every 300 seconds" in schedules
    assert "/admin/django_celery_beat/periodictask/" in schedules
    assert "Edit in the admin" in schedules


def test_run_a_snapshot_now_button_runs_the_job(client, operator, pipeline, ping):
    pipeline.post([event("a", timezone.now() - dt.timedelta(hours=1), "1")], at=timezone.now())
    client.force_login(operator)

    response = client.post("/operations/snapshot-run/", follow=True)

    run = SnapshotRun.objects.get()
    assert run.trigger == RunTrigger.MANUAL
    assert Snapshot.objects.count() == 1
    assert f"Snapshot run {run.pk} finished: 1 day snapshotted." in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_run_a_snapshot_now_says_when_another_run_holds_the_lock(client, operator, ping):
    client.force_login(operator)

    with advisory_lock_held_elsewhere(SNAPSHOT_LOCK):
        response = client.post("/operations/snapshot-run/", follow=True)

    assert "Another snapshot run is in progress" in response.content.decode()
    assert SnapshotRun.objects.get().outcome == RunOutcome.SKIPPED


def test_requeue_button_queues_batches_left_waiting(client, operator, pipeline, ping):
    # The publish happens on commit, which this test's transaction never reaches.
    old = pipeline.ingest([event("old", T0, "1")], at=timezone.now() - dt.timedelta(hours=1))
    pipeline.ingest([event("new", T0, "1")], at=timezone.now())
    client.force_login(operator)

    response = client.post("/operations/requeue/", follow=True)

    assert "Queued 1 batch again." in response.content.decode()
    assert IngestBatch.objects.get(pk=old.batch_id).enqueue_count == 1


def test_requeue_button_with_nothing_stuck_says_so(client, operator, ping):
    client.force_login(operator)

    response = client.post("/operations/requeue/", follow=True)

    assert "nothing to queue again" in response.content.decode()


def test_buttons_only_answer_posts(client, operator):
    client.force_login(operator)

    assert client.get("/operations/snapshot-run/").status_code == 405
    assert client.get("/operations/requeue/").status_code == 405
    assert not SnapshotRun.objects.exists()


def test_runs_that_changed_nothing_are_counted_not_listed(client, operator, ping, at):
    at(T0 + dt.timedelta(hours=1))
    for n, days in enumerate([0, 2, 0, 0, 1]):
        SnapshotRun.objects.create(
            trigger=RunTrigger.SCHEDULE,
            started_at=T0 + dt.timedelta(minutes=n),
            outcome=RunOutcome.OK,
            duration_ms="1.000",
            days_snapshotted=days,
        )
    client.force_login(operator)

    html = client.get("/operations/").content.decode()
    section = html.split('id="runs-heading"', 1)[1].split("</section>", 1)[0]

    assert [row[3] for row in _cells(section)] == ["1", "2"]
    assert "3 runs in the last 24 hours found nothing to publish" in section


def test_the_snapshot_interval_is_a_plain_setting(client, operator, ping):
    client.force_login(operator)

    before = client.get("/operations/").content.decode()
    response = client.post("/operations/snapshot-interval/", {"minutes": "7"})
    task = PeriodicTask.objects.select_related("interval").get(task="snapshots.tasks.run_snapshots")
    after = client.get(response["Location"]).content.decode()

    assert "Take a snapshot every" in before
    assert 'name="minutes" value="5"' in before  # the migration's 300 seconds
    assert response.status_code == 302
    assert (task.interval.every, task.interval.period) == (7, "minutes")
    assert PeriodicTasks.last_change() is not None
    assert 'name="minutes" value="7"' in after
    assert "A snapshot is now taken every 7 minutes." in after


def test_a_wrong_snapshot_interval_is_explained(client, operator, ping):
    client.force_login(operator)

    html = client.post("/operations/snapshot-interval/", {"minutes": "0"}).content.decode()

    assert "Ensure this value is greater than or equal to 1." in html
    assert PeriodicTask.objects.get(task="snapshots.tasks.run_snapshots").interval.every == 300
