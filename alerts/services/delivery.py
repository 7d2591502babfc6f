"""Delivering one alert to one channel: one attempt per call, every attempt recorded.

The Celery task (alerts/tasks.py) calls `delivery_attempt` and retries with backoff when it
says so. Each HTTP call has a short timeout, so a receiver that hangs costs one worker
thread a few seconds, never the snapshot job or ingest (they only write rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction

from alerts.models import AlertDelivery, AlertDeliveryAttempt, DeliveryStatus
from alerts.selectors import alert_payload
from alerts.services.raising import EMAIL_CHANNEL, WEBHOOK_CHANNEL

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Snapagg-Signature"


class DeliveryError(Exception):
    """The channel refused or did not answer; worth another try."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class DeliveryOutcome:
    status: DeliveryStatus
    retry_in: float | None = None  # seconds until the next try, when one is due


def signature(*, body: bytes, secret: str) -> str:
    """The X-Snapagg-Signature value: sha256=<hex HMAC-SHA256 of the exact body>."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _webhook_target(delivery: AlertDelivery) -> tuple[str, str]:
    if delivery.channel == WEBHOOK_CHANNEL:
        url, secret = settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET
    elif delivery.extra_channel is not None and delivery.extra_channel.enabled:
        url = delivery.extra_channel.url
        secret = delivery.extra_channel.secret or settings.ALERT_WEBHOOK_SECRET
    else:
        url, secret = "", ""
    if not url:
        raise DeliveryError(f"channel {delivery.channel} is no longer configured")
    return url, secret


def _webhook_send(delivery: AlertDelivery) -> int:
    url, secret = _webhook_target(delivery)
    body = webhook_body(alert_payload(delivery.alert))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(body=body, secret=secret),
    }
    try:
        response = httpx.post(
            url,
            content=body,
            headers=headers,
            timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.TimeoutException as exc:
        raise DeliveryError(
            f"no answer within {settings.ALERT_WEBHOOK_TIMEOUT_SECONDS:g} s ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(
            f"HTTP {response.status_code}: {response.text[:200]}", http_status=response.status_code
        )
    return response.status_code


def _email_send(delivery: AlertDelivery) -> None:
    alert = delivery.alert
    payload = alert_payload(alert)
    try:
        mail_admins(
            subject=f"{alert.get_kind_display()}: {alert.detail[:80]}",
            message=f"{alert.detail}\n\n{json.dumps(payload, indent=2)}",
            fail_silently=False,
        )
    except Exception as exc:  # SMTP errors come in many classes; all mean "try again"
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


def _backoff(attempt: int) -> float:
    return min(
        settings.ALERT_RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1),
        settings.ALERT_RETRY_BACKOFF_MAX_SECONDS,
    )


def _attempt_record(
    *, delivery: AlertDelivery, now: dt.datetime, http_status: int | None, error: str
) -> DeliveryOutcome:
    number = delivery.attempts + 1
    ok = not error
    if ok:
        status, retry_in = DeliveryStatus.DELIVERED, None
    elif number >= settings.ALERT_DELIVERY_MAX_ATTEMPTS:
        status, retry_in = DeliveryStatus.FAILED, None
    else:
        status, retry_in = DeliveryStatus.PENDING, _backoff(number)
    with transaction.atomic():
        AlertDeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            attempted_at=now,
            ok=ok,
            http_status=http_status,
            error=error,
        )
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            attempts=number,
            status=status,
            last_error=error if error else delivery.last_error,
            delivered_at=now if ok else None,
        )
    return DeliveryOutcome(status=status, retry_in=retry_in)


def delivery_attempt(*, delivery_id: int, now: dt.datetime) -> DeliveryOutcome:
    """Try once to deliver; record the attempt; say whether (and when) to try again."""
    delivery = (
        AlertDelivery.objects.select_related("alert__metric", "extra_channel")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return DeliveryOutcome(status=delivery.status if delivery else DeliveryStatus.FAILED)
    http_status: int | None = None
    error = ""
    try:
        if delivery.channel == EMAIL_CHANNEL:
            _email_send(delivery)
        else:
            http_status = _webhook_send(delivery)
    except DeliveryError as exc:
        error, http_status = str(exc), exc.http_status
        logger.warning(
            "Alert delivery %s to %s failed: %s",
            delivery.pk,
            delivery.channel,
            error,
            extra={"alert_id": delivery.alert_id, "delivery_id": delivery.pk},
        )
    return _attempt_record(delivery=delivery, now=now, http_status=http_status, error=error)


def deliveries_attempt_pending(*, now: dt.datetime, limit: int = 100) -> int:
    """Try each pending delivery once, here and now (no worker needed): for
    `manage.py check_alerts --deliver` from cron while the workers are down. Returns how
    many were delivered."""
    pending = AlertDelivery.objects.filter(status=DeliveryStatus.PENDING).order_by("pk")
    outcomes = [
        delivery_attempt(delivery_id=pk, now=now)
        for pk in pending.values_list("pk", flat=True)[:limit]
    ]
    return sum(1 for outcome in outcomes if outcome.status == DeliveryStatus.DELIVERED)
