"""Celery adapter for the periodic alert checks."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from web.alert_checks import alert_checks_run


@shared_task(acks_late=True, time_limit=120, soft_time_limit=100)
def check_alerts() -> dict[str, int]:
    result = alert_checks_run(now=timezone.now())
    return {"raised": result.raised, "cleared": result.cleared, "requeued": result.requeued}
