"""Reads of alerts: the API list and the webhook payload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, QuerySet
from rest_framework import serializers

from alerts.models import Alert, AlertCondition, AlertDelivery


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert object of API.md, without `deliveries` (the webhook body)."""
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "created_at": serializers.DateTimeField().to_representation(alert.created_at),
        "metric": alert.metric.name if alert.metric_id else None,
        "day": alert.day.isoformat() if alert.day else None,
        "sequence": alert.sequence,
        "detail": alert.detail,
    }


def alert_list(*, kind: str | None = None, since: dt.datetime | None = None) -> QuerySet[Alert]:
    """Alerts newest first, with their deliveries (two queries for a page)."""
    alerts = Alert.objects.select_related("metric").prefetch_related(
        Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("channel"))
    )
    if kind:
        alerts = alerts.filter(kind=kind)
    if since is not None:
        alerts = alerts.filter(created_at__gte=since)
    return alerts.order_by("-created_at", "-id")


def alert_condition_active(*, key: str) -> bool:
    return AlertCondition.objects.filter(key=key, active=True).exists()
