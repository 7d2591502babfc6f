"""The Celery application: `celery -A snapagg_project worker` / `beat`."""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snapagg_project.settings")

logger = logging.getLogger(__name__)


def _redis_channel_survives_a_released_connection() -> None:
    """Keep the worker alive when Redis goes away while it holds unacknowledged messages.

    kombu's Redis channel, closed after the connection was lost, tries to restore those
    messages through a connection object that has already been released
    (`connection.client` is None) and raises AttributeError. Celery treats that as an
    "Unrecoverable error" and the worker exits (seen in the fault run: bench/faults).
    Raising the transport's ConnectionError instead lets kombu ignore it as a connection
    error and the worker reconnects. Nothing is lost either way: the batches are durable in
    PostgreSQL and the sweeper re-enqueues any whose message is gone.
    """
    try:
        from kombu.transport import redis as kombu_redis
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # no Redis transport installed
        return
    original = kombu_redis.Channel._connparams
    if getattr(original, "snapagg_patched", False):
        return

    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection was already released")
        return original(self, asynchronous=asynchronous)

    _connparams.snapagg_patched = True
    kombu_redis.Channel._connparams = _connparams


_redis_channel_survives_a_released_connection()

app = Celery("snapagg_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task unless
# this is set: a new PostgreSQL backend per task cost more CPU than applying a 1,000-event
# batch. Connections are instead recycled like a web request's, below.
app.conf.CELERY_DB_REUSE_MAX = 2**31
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def recycle_database_connections(**kwargs: object) -> None:
    """What Django does around each request: drop a connection that failed or outlived
    CONN_MAX_AGE; CONN_HEALTH_CHECKS then checks a reused one before its first query."""
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def refuse_changed_reporting_timezone(**kwargs: object) -> None:
    from aggregation.selectors import reporting_timezone_verify

    reporting_timezone_verify()


# Imported after the app exists: the step only touches Django inside the worker.
from web.heartbeat import WorkerHeartbeatStep  # noqa: E402

app.steps["worker"].add(WorkerHeartbeatStep)
