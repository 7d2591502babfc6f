"""The worker bootstep that writes this worker's heartbeat every few seconds, whatever the
broker, so the health endpoint and the operations page can count live workers cheaply.

Loaded by the Celery app module before Django is set up, so Django is imported inside the
methods, which run in a started worker.
"""

from __future__ import annotations

import logging
import os

from celery import bootsteps

logger = logging.getLogger(__name__)


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """Records this worker in the database every few seconds, whatever the broker, so the
    health endpoint and the operations page can count live workers cheaply."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.started_at = None

    def start(self, worker) -> None:
        from django.conf import settings
        from django.utils import timezone

        self.started_at = timezone.now()
        self._beat(worker)
        self.tref = worker.timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_SECONDS, self._beat, (worker,), priority=10
        )

    def stop(self, worker) -> None:
        from web.services import worker_heartbeat_remove

        if self.tref is not None:
            self.tref.cancel()
        try:
            worker_heartbeat_remove(hostname=worker.hostname)
        except Exception:
            logger.exception("Could not remove the worker heartbeat")

    def _beat(self, worker) -> None:
        from django.db import close_old_connections
        from django.utils import timezone

        from web.services import worker_heartbeat_record

        try:
            close_old_connections()
            worker_heartbeat_record(
                hostname=worker.hostname,
                pid=os.getpid(),
                started_at=self.started_at,
                now=timezone.now(),
            )
        except Exception:
            # A missed heartbeat shows up as a missing worker on the health page.
            logger.exception("Could not record the worker heartbeat")
