"""Shared fixtures. Time is always passed in; nothing here reads the clock for logic."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from rest_framework.test import APIClient

from aggregation.models import DayTotal, Metric, ReportingTimezone
from events.models import BatchStatus, IngestBatch, IngestChannel
from events.services.apply import batch_apply
from events.services.ingest import IngestResult, events_ingest
from harness.processes import ManagedProcess, Stack
from harness.waiting import wait_until
from snapshots.models import RunTrigger, Snapshot, SnapshotRun
from snapshots.services.run import snapshot_run_execute
from tests.factories import UserFactory, api_key_for

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PROJECT_ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def _require(condition: bool, what: str) -> None:
    """A missing tool beside PostgreSQL and Redis (Chromium, a redis-server binary) is a
    failure in CI and a skip elsewhere."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not configured", pytrace=False)
    pytest.skip(f"needs {what}")


def uses_postgresql() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def uses_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://"))


def _require_server(condition: bool, what: str) -> None:
    """PostgreSQL and Redis are always there (scripts/test.sh starts embedded ones when no
    URL is given): a test that finds one missing fails, it never skips."""
    if not condition:
        pytest.fail(f"{what} is required but is not configured", pytrace=False)


class FastPasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with few rounds: the factories hash a password for every user, and at
    Django's default a million rounds cost most of some tests' time. The iteration count is
    stored in the hash, so any process (a worker, a web server) still verifies it."""

    iterations = 1000


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["tests.conftest.FastPasswordHasher", *settings.PASSWORD_HASHERS]


@pytest.fixture(autouse=True)
def _own_read_cache(settings) -> None:
    """Each test its own space in the read cache: its keys are revision counters, and two
    tests' databases reach the same counters with different figures."""
    settings.READ_CACHE_NAMESPACE = f"test-{uuid.uuid4().hex}"


@pytest.fixture(autouse=True)
def _apply_publish_flag_down() -> None:
    """No test starts with another's apply flag up (events/services/enqueue.py): its batches
    would publish no apply task and wait for a task that belongs to a finished test."""
    from events.services.enqueue import _publish_flag, _publish_flag_lower

    flag = _publish_flag()
    if flag is not None:
        _publish_flag_lower(flag)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> None:
    """Let the test database's sessions TRUNCATE snapshots: Django's flush between
    transactional tests is a TRUNCATE, which the immutability trigger otherwise refuses
    (snapshots migration 0006). Set on this throwaway database only, for every session
    opened from now on (workers and gunicorn started by tests too)."""
    if not uses_postgresql():
        return
    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            name = connection.ops.quote_name(connection.settings_dict["NAME"])
            cursor.execute(f"ALTER DATABASE {name} SET snapagg.allow_truncate = 'on'")
        connection.close()  # the next session starts with the setting


@pytest.fixture(autouse=True)
def _backend_requirements(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("redis"):
        _require_server(uses_redis(), "Redis (CELERY_BROKER_URL=redis://...)")


@pytest.fixture(autouse=True)
def _fresh_content_type_cache() -> None:
    """Django caches content type ids per process. A test inside a transaction that is
    rolled back can cache one it created (after a transactional test's flush removed them),
    and a later test would write that id (an admin log entry) and fail on its foreign key."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


@pytest.fixture(autouse=True)
def _baseline_rows(request: pytest.FixtureRequest) -> None:
    """Rows the migrations create; transactional tests flush them, so put them back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    ReportingTimezone.objects.get_or_create(id=1, defaults={"name": settings.REPORTING_TIMEZONE})
    _migration_rows_restore()
    if not Metric.objects.filter(is_default=True).exists():
        Metric.objects.create(
            name="default",
            description="Events that name no metric.",
            is_default=True,
            allowed_lateness=dt.timedelta(days=1),
        )


# The data migrations that create beat schedules, in migration order (the rename after the
# schedule it renames), run again after a transactional test's flush removed their rows.
SCHEDULE_MIGRATIONS = (
    ("events.migrations.0002_sweeper_schedule", "create_schedule"),
    ("snapshots.migrations.0003_snapshot_schedule", "create_schedule"),
    ("aggregation.migrations.0004_reconcile_schedule", "create_schedule"),
    ("snapshots.migrations.0005_reconcile_task_moved", "rename"),
    ("archive.migrations.0002_archive_schedule", "create_schedule"),
    ("web.migrations.0002_alert_checks_schedule", "create_schedule"),
)


def _migration_rows_restore() -> None:
    """The viewer group with its permissions and the beat schedules, as the migrations make
    them: a transactional test's flush deletes them (and the permissions too when the flush
    skips post_migrate), and a later test that reads them, in whatever order the run takes,
    must find them. Two existence checks when they are there."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django_celery_beat.models import PeriodicTask

    from common.access import READ_PERMISSIONS, VIEWER_GROUP

    if not Group.objects.filter(name=VIEWER_GROUP).exists():
        group = Group.objects.create(name=VIEWER_GROUP)
        for permission in READ_PERMISSIONS:
            # The flush may have taken the permission and its content type too (when it
            # skipped post_migrate): made here as post_migrate would.
            app_label, codename = permission.split(".")
            model = apps.get_model(app_label, codename.removeprefix("view_"))
            content_type, _ = ContentType.objects.get_or_create(
                app_label=app_label, model=model._meta.model_name
            )
            view, _ = Permission.objects.get_or_create(
                content_type=content_type,
                codename=codename,
                defaults={"name": f"Can view {model._meta.verbose_name_raw}"},
            )
            group.permissions.add(view)
    if not PeriodicTask.objects.exists():
        for module, function in SCHEDULE_MIGRATIONS:
            getattr(importlib.import_module(module), function)(apps, None)


def event(
    event_id: str,
    event_time: dt.datetime | str,
    value: Any = "1",
    **fields: Any,
) -> dict[str, Any]:
    """An event as a client would post it."""
    if isinstance(event_time, dt.datetime):
        event_time = event_time.isoformat()
    for name in ("arrival_time",):
        if isinstance(fields.get(name), dt.datetime):
            fields[name] = fields[name].isoformat()
    return {"event_id": event_id, "event_time": event_time, "value": value, **fields}


@dataclass
class Pipeline:
    """Drives the production services with an explicit clock, as replay does."""

    def ingest(self, events: list[dict[str, Any]], at: dt.datetime) -> IngestResult:
        return events_ingest(
            raw_events=events, received_at=at, channel=IngestChannel.API, enqueue=False
        )

    def apply_pending(self, at: dt.datetime) -> int:
        pending = IngestBatch.objects.filter(status=BatchStatus.RECEIVED).order_by("pk")
        return sum(
            1
            for pk in pending.values_list("pk", flat=True)
            if batch_apply(batch_id=pk, now=at).applied
        )

    def post(self, events: list[dict[str, Any]], at: dt.datetime) -> IngestResult:
        result = self.ingest(events, at)
        self.apply_pending(at)
        return result

    def snapshot(self, at: dt.datetime) -> SnapshotRun:
        return snapshot_run_execute(now=at, trigger=RunTrigger.MANUAL)

    def total(self, day: dt.date, metric: str = "default") -> DayTotal:
        return DayTotal.objects.get(metric__name=metric, day=day)

    def snapshots(self, day: dt.date, metric: str = "default") -> list[Snapshot]:
        return list(Snapshot.objects.filter(metric__name=metric, day=day).order_by("sequence"))


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline()


@pytest.fixture
def operator(db):
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


@pytest.fixture
def api_client(db) -> APIClient:
    user = UserFactory(username="api-client")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key_for(user)}")
    return client


def test_database_url() -> str:
    """The URL of the database this test run is using (the test_ database)."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "127.0.0.1"
    if host.startswith("/"):  # a socket folder (the embedded PostgreSQL's), percent-encoded
        host = quote(host, safe="")
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # not a test


# One waiting helper for everything: it fails at once, with the end of the log, if the
# process given (a worker) exits meanwhile.
wait_for = wait_until


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path: Path) -> Iterator[ManagedProcess]:
    """A real `celery worker` process on the real broker and the test database."""
    _require_server(uses_redis(), "Redis (CELERY_BROKER_URL=redis://...)")
    from snapagg_project.celery import app
    from web.models import WorkerHeartbeat

    app.control.purge()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
    }
    hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
    stack = Stack(env=env, workdir=tmp_path, stop_grace=30)
    try:
        yield stack.start_worker(
            hostname=hostname,
            pool="prefork",
            concurrency=2,
            ready=lambda _: WorkerHeartbeat.objects.filter(hostname=hostname).exists(),
            ready_timeout=60,
        )
    finally:
        stack.stop()
