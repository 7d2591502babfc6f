from __future__ import annotations

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from snapagg_project.celery import app

pytestmark = pytest.mark.django_db


def test_migrate_creates_the_snapshot_and_sweeper_schedules_from_settings():
    schedules = {
        task.task: task.interval.every
        for task in PeriodicTask.objects.filter(interval__isnull=False).select_related("interval")
    }

    assert schedules["snapshots.tasks.run_snapshots"] == settings.SNAPSHOT_INTERVAL_SECONDS
    assert schedules["events.tasks.sweep_unapplied_batches"] == settings.SWEEP_INTERVAL_SECONDS


def test_every_scheduled_task_is_a_registered_celery_task():
    app.loader.import_default_modules()

    for task_name in PeriodicTask.objects.values_list("task", flat=True):
        assert task_name in app.tasks, task_name


def test_celery_accepts_json_only_and_acks_late():
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_time_limit


@pytest.mark.django_db(transaction=True)
def test_a_schedule_created_by_a_data_migration_is_seen_by_a_running_beat():
    """A running DatabaseScheduler re-reads its schedules only when
    PeriodicTasks.last_change() moves; the migrations' helper moves it."""
    import importlib

    from django.apps import apps
    from django_celery_beat.models import PeriodicTasks
    from django_celery_beat.schedulers import DatabaseScheduler

    migration = importlib.import_module("snapshots.migrations.0003_snapshot_schedule")
    PeriodicTask.objects.filter(task=migration.TASK).delete()
    PeriodicTasks.update_changed()
    scheduler = DatabaseScheduler(app=app)
    assert "Snapshot run" not in scheduler.schedule
    assert not scheduler.schedule_changed()

    migration.create_schedule(apps, schema_editor=None)

    assert scheduler.schedule_changed()
    assert "Snapshot run" in scheduler.all_as_schedule()
