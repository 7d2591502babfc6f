"""Raising alerts: rows only, and the delivery tasks published after the commit.

Nothing here talks to a channel, so raising an alert costs the snapshot job (or a check)
a few inserts and never waits for a webhook or a mail server.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.db import connection, transaction

from alerts.models import (
    Alert,
    AlertChannel,
    AlertCondition,
    AlertDelivery,
    AlertKind,
    DeliveryStatus,
)

logger = logging.getLogger(__name__)

DELIVER_TASK = "alerts.tasks.alert_deliver"
WEBHOOK_CHANNEL = "webhook"
EMAIL_CHANNEL = "email"


@dataclass(frozen=True)
class AlertDraft:
    kind: AlertKind
    detail: str
    metric_id: int | None = None
    day: dt.date | None = None
    sequence: int | None = None


def _channels() -> list[tuple[str, int | None]]:
    """Where an alert raised now goes, as (channel, extra channel id): the settings' webhook
    and mail, then the extra webhooks enabled in the admin, by name. Plain SQL: the
    snapshot job asks at every run that raises an alert."""
    channels: list[tuple[str, int | None]] = []
    if settings.ALERT_WEBHOOK_URL:
        channels.append((WEBHOOK_CHANNEL, None))
    if settings.ALERT_EMAIL_ADMINS and settings.ADMINS:
        channels.append((EMAIL_CHANNEL, None))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, name FROM {AlertChannel._meta.db_table} WHERE enabled ORDER BY name"
        )
        channels += [(f"webhook:{name}", pk) for pk, name in cursor.fetchall()]
    return channels


# After a failed publish, later ones from this process are skipped for a while: while the
# broker is down each attempt costs its socket timeout, and a snapshot run that raised many
# alerts would wait that long for each. Skipped deliveries are durable; the check requeues.
_publish_paused_until = 0.0


def delivery_enqueue(delivery_id: int) -> bool:
    """Publish one delivery task. A failed publish is logged, not raised: the delivery row
    is durable and the periodic check publishes unsent deliveries again."""
    global _publish_paused_until
    if time.monotonic() < _publish_paused_until:
        return False
    try:
        current_app.send_task(DELIVER_TASK, kwargs={"delivery_id": delivery_id}, retry=False)
    except Exception:
        _publish_paused_until = time.monotonic() + settings.BROKER_PUBLISH_PAUSE_SECONDS
        logger.exception(
            "Could not enqueue alert delivery %s; the check will retry it",
            delivery_id,
            extra={"delivery_id": delivery_id},
        )
        return False
    return True


def deliveries_enqueue(delivery_ids: list[int]) -> int:
    """Publish each; stop at the first failure (the broker is down: the rest would fail
    too, each after a timeout)."""
    published = 0
    for delivery_id in delivery_ids:
        if not delivery_enqueue(delivery_id):
            break
        published += 1
    return published


def alerts_raise(
    *, drafts: list[AlertDraft], now: dt.datetime, condition_key: str = "", recovery: bool = False
) -> list[Alert]:
    """Write the alerts and one delivery per channel; publish the deliveries on commit."""
    if not drafts:
        return []
    alerts = Alert.objects.bulk_create(
        Alert(
            kind=draft.kind,
            created_at=now,
            metric_id=draft.metric_id,
            day=draft.day,
            sequence=draft.sequence,
            detail=draft.detail,
            condition_key=condition_key,
            recovery=recovery,
        )
        for draft in drafts
    )
    channels = _channels()  # one query for all the alerts
    deliveries = AlertDelivery.objects.bulk_create(
        AlertDelivery(alert=alert, channel=name, extra_channel_id=channel_id, created_at=now)
        for alert in alerts
        for name, channel_id in channels
    )
    ids = [delivery.pk for delivery in deliveries]
    if ids:
        transaction.on_commit(lambda: deliveries_enqueue(ids))
    for alert in alerts:
        logger.warning(
            "Alert %s: %s",
            alert.kind,
            alert.detail,
            extra={"alert_id": alert.pk, "kind": alert.kind},
        )
    return alerts


def alert_raise(
    *,
    kind: AlertKind,
    detail: str,
    now: dt.datetime,
    metric_id: int | None = None,
    day: dt.date | None = None,
    sequence: int | None = None,
) -> Alert:
    draft = AlertDraft(kind=kind, detail=detail, metric_id=metric_id, day=day, sequence=sequence)
    return alerts_raise(drafts=[draft], now=now)[0]


def _condition_locked(key: str) -> AlertCondition:
    AlertCondition.objects.get_or_create(key=key)
    return AlertCondition.objects.select_for_update().get(key=key)


def alert_condition_raise(
    *, key: str, kind: AlertKind, detail: str, now: dt.datetime, metric_id: int | None = None
) -> Alert | None:
    """Raise an alert for a condition unless it is already active: a condition that holds
    over many checks raises one alert, not one per check."""
    with transaction.atomic():
        condition = _condition_locked(key)
        if condition.active:
            return None
        draft = AlertDraft(kind=kind, detail=detail, metric_id=metric_id)
        [alert] = alerts_raise(drafts=[draft], now=now, condition_key=key)
        condition.active, condition.since, condition.alert = True, now, alert
        condition.save(update_fields=["active", "since", "alert"])
    return alert


def alert_condition_clear(
    *, key: str, kind: AlertKind, detail: str, now: dt.datetime
) -> Alert | None:
    """End an active condition with one recovery note (an alert of the same kind)."""
    with transaction.atomic():
        condition = AlertCondition.objects.select_for_update().filter(key=key, active=True).first()
        if condition is None:
            return None
        [alert] = alerts_raise(
            drafts=[AlertDraft(kind=kind, detail=detail)],
            now=now,
            condition_key=key,
            recovery=True,
        )
        condition.active, condition.since, condition.alert = False, now, alert
        condition.save(update_fields=["active", "since", "alert"])
    return alert


def deliveries_requeue_unsent(*, now: dt.datetime) -> int:
    """Publish again the deliveries never tried since ALERT_REQUEUE_AFTER_SECONDS (their
    first publish failed: broker down). A duplicate attempt is harmless: the receiver sees
    the same alert id twice."""
    cutoff = now - dt.timedelta(seconds=settings.ALERT_REQUEUE_AFTER_SECONDS)
    ids = list(
        AlertDelivery.objects.filter(
            status=DeliveryStatus.PENDING, attempts=0, created_at__lt=cutoff
        ).values_list("pk", flat=True)[:1000]
    )
    return deliveries_enqueue(ids)
