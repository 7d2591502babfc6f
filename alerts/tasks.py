"""Celery adapter: deliver one alert to one channel, retried with exponential backoff."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from alerts.services.delivery import delivery_attempt


@shared_task(bind=True, acks_late=True, max_retries=None, time_limit=120, soft_time_limit=100)
def alert_deliver(self, delivery_id: int) -> str:
    # The attempt count lives in the delivery row (not Celery's retry counter), so a
    # redelivered message or a requeue continues the same count and stops at the maximum.
    outcome = delivery_attempt(delivery_id=delivery_id, now=timezone.now())
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
