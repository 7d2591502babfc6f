"""/api/health/ tells the truth about the broker, the workers and the backlog: real
gunicorn and Celery processes, a private Redis that the tests stop and pause."""

from __future__ import annotations

import signal

import pytest
from django.utils import timezone

from tests.conftest import event, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_health_reports_the_broker_down_hung_and_back(stack, private_redis, web):
    stack.start_web()
    assert web.health()["broker"] == "ok"

    private_redis.kill()
    down = web.health()
    private_redis.start()
    back = web.health()
    private_redis.pause()
    try:
        hung = web.health()  # answers: the probe is bounded by the socket timeout
    finally:
        private_redis.resume()

    assert (down["database"], down["broker"]) == ("ok", "down")
    assert back["broker"] == "ok"
    assert hung["broker"] == "down"


def test_health_counts_live_workers_and_notices_a_killed_one(stack, web):
    stack.start_web()
    assert web.health()["workers"] == 0
    stack.start_worker()
    wait_for(lambda: web.health()["workers"] == 1, 30, "the worker's heartbeat")

    # SIGKILL: the worker cannot say goodbye; its heartbeat just stops.
    stack.worker.process.send_signal(signal.SIGKILL)
    for child in stack.worker.children():
        child.kill()

    wait_for(lambda: web.health()["workers"] == 0, 30, "the dead worker to be dropped")


def test_health_shows_the_backlog_and_its_age_until_a_worker_applies_it(stack, web):
    stack.start_web()
    now = timezone.now()
    status, _ = web.request(
        "POST", "/api/events/", {"events": [event(f"b{i}", now, "1") for i in range(3)]}
    )
    assert status == 202

    first = web.health()
    wait_for(
        lambda: web.health()["oldest_unapplied_seconds"] > first["oldest_unapplied_seconds"],
        30,
        "the backlog to age",
    )
    stack.start_worker()
    wait_for(lambda: web.health()["backlog"] == 0, 60, "the worker to apply the backlog")

    assert (first["backlog"], first["workers"]) == (3, 0)
    assert first["oldest_unapplied_seconds"] >= 0
    assert web.health()["oldest_unapplied_seconds"] is None
