"""Alert delivery, for real: a local HTTP receiver, a real Celery worker, no mocks."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from alerts.admin import AlertChannelAdmin
from alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertKind,
    DeliveryStatus,
)
from alerts.selectors import alert_payload
from alerts.services.delivery import delivery_attempt
from alerts.services.raising import alert_raise
from harness.processes import ManagedProcess, Stack
from tests.alerts.receiver import Receiver
from tests.conftest import T0, test_database_url, wait_for

SECRET = "test-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


def _signature_ok(body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@pytest.fixture
def alert_worker(transactional_db, tmp_path: Path, receiver: Receiver, settings):
    """A real worker configured with the receiver as ALERT_WEBHOOK_URL and short backoff."""
    from snapagg_project.celery import app
    from web.models import WorkerHeartbeat

    settings.ALERT_WEBHOOK_URL = receiver.url
    settings.ALERT_WEBHOOK_SECRET = SECRET
    app.control.purge()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
        "ALERT_WEBHOOK_URL": receiver.url,
        "ALERT_WEBHOOK_SECRET": SECRET,
        "ALERT_RETRY_BACKOFF_SECONDS": "0.2",
    }
    hostname = f"alerts-{uuid.uuid4().hex[:8]}@localhost"
    stack = Stack(env=env, workdir=tmp_path, stop_grace=30)
    try:
        yield stack.start_worker(
            hostname=hostname,
            pool="threads",
            concurrency=2,
            ready=lambda _: WorkerHeartbeat.objects.filter(hostname=hostname).exists(),
            ready_timeout=60,
        )
    finally:
        stack.stop()


@pytest.mark.redis
def test_webhook_is_signed_and_retried_after_two_500s(
    alert_worker: ManagedProcess, receiver: Receiver, api_client
):
    receiver.statuses = [500, 500]
    with transaction.atomic():  # published when this commits, as from the snapshot job
        alert = alert_raise(kind=AlertKind.BACKLOG_STALE, detail="Backlog is stale.", now=T0)
    delivery = AlertDelivery.objects.get(alert=alert)
    wait_for(
        lambda: AlertDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DELIVERED,
        60,
        "the webhook delivery",
        alert_worker,
    )
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        assert request.path == "/hook"
        assert request.headers["Content-Type"] == "application/json"
        assert _signature_ok(request.body, request.headers["X-Snapagg-Signature"])
        assert json.loads(request.body) == alert_payload(alert)
    assert json.loads(receiver.requests[0].body) == {
        "id": alert.pk,
        "kind": "backlog_stale",
        "created_at": "2026-11-20T12:00:00Z",
        "metric": None,
        "day": None,
        "sequence": None,
        "detail": "Backlog is stale.",
    }
    attempts = list(AlertDeliveryAttempt.objects.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.ok, a.http_status) for a in attempts] == [
        (1, False, 500),
        (2, False, 500),
        (3, True, 200),
    ]
    [item] = api_client.get("/api/alerts/").json()["results"]
    assert item["deliveries"] == [
        {"channel": "webhook", "status": "delivered", "attempts": 3, "last_error": "HTTP 500: ok"}
    ]


@pytest.mark.django_db
def test_a_hanging_receiver_is_cut_off_by_the_timeout(receiver: Receiver, settings):
    receiver.hang = True
    settings.ALERT_WEBHOOK_URL = receiver.url
    settings.ALERT_WEBHOOK_SECRET = SECRET
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 0.5
    alert = alert_raise(kind=AlertKind.BACKLOG_STALE, detail="stale", now=T0)
    delivery = AlertDelivery.objects.get(alert=alert)
    outcome = delivery_attempt(delivery_id=delivery.pk, now=timezone.now())
    receiver.released.set()
    assert outcome.status == DeliveryStatus.PENDING
    assert outcome.retry_in is not None  # tried again later, with backoff
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert delivery.last_error.startswith("no answer within 0.5 s")
    [attempt] = delivery.tries.all()
    assert not attempt.ok
    assert attempt.http_status is None


@pytest.mark.django_db
def test_delivery_gives_up_after_the_maximum_attempts(receiver: Receiver, settings):
    receiver.statuses = [503] * 3
    settings.ALERT_WEBHOOK_URL = receiver.url
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    settings.ALERT_RETRY_BACKOFF_SECONDS = 10
    alert = alert_raise(kind=AlertKind.RESTATEMENT, detail="restated", now=T0)
    delivery = AlertDelivery.objects.get(alert=alert)
    waits = [
        delivery_attempt(delivery_id=delivery.pk, now=T0 + dt.timedelta(minutes=n)).retry_in
        for n in range(3)
    ]
    assert waits == [10, 20, None]  # exponential backoff, then give up
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 3)
    assert len(receiver.requests) == 3


@pytest.mark.django_db
def test_email_goes_to_the_admins_through_django_mail(settings, mailoutbox):
    settings.ADMINS = [("ops@example.com", "ops@example.com")]
    alert = alert_raise(kind=AlertKind.SNAPSHOTS_OVERDUE, detail="No run for 700 s.", now=T0)
    [delivery] = AlertDelivery.objects.filter(alert=alert)
    assert delivery.channel == "email"
    outcome = delivery_attempt(delivery_id=delivery.pk, now=T0)
    assert outcome.status == DeliveryStatus.DELIVERED
    [mail] = mailoutbox
    assert mail.to == ["ops@example.com"]
    assert "No run for 700 s." in mail.body


@pytest.mark.django_db
def test_extra_webhooks_from_the_admin_get_their_own_delivery(receiver: Receiver, settings):
    settings.ALERT_WEBHOOK_SECRET = SECRET
    AlertChannel.objects.create(name="oncall", url=receiver.url)
    AlertChannel.objects.create(name="off", url=receiver.url, enabled=False)
    alert = alert_raise(kind=AlertKind.ANOMALY, detail="big", now=T0)
    [delivery] = AlertDelivery.objects.filter(alert=alert)
    assert delivery.channel == "webhook:oncall"
    assert delivery_attempt(delivery_id=delivery.pk, now=T0).status == DeliveryStatus.DELIVERED
    [request] = receiver.requests
    assert _signature_ok(request.body, request.headers["X-Snapagg-Signature"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/hook", "file:///etc/passwd", "javascript:alert(1)", "gopher://example.com"],
)
def test_the_admin_refuses_a_webhook_url_that_is_not_http(url, admin_client):
    response = admin_client.post(
        "/admin/alerts/alertchannel/add/", {"name": "bad", "url": url, "enabled": "on"}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "url" in response.context["adminform"].form.errors
    assert not AlertChannel.objects.exists()


@pytest.mark.django_db
def test_the_admin_accepts_an_https_webhook(admin_client):
    response = admin_client.post(
        "/admin/alerts/alertchannel/add/",
        {"name": "good", "url": "https://hooks.example.com/snapagg", "enabled": "on"},
    )
    assert response.status_code == 302
    assert AlertChannel.objects.get().url == "https://hooks.example.com/snapagg"
    assert AlertChannelAdmin.list_display == ["name", "url", "enabled"]
