"""The nightly reconcile task moved from aggregation to snapshots (it reads events and
snapshots, which sit above aggregation): point its beat schedule at the new name."""

from django.db import migrations

from common.beat import periodic_task_rename

OLD = "aggregation.tasks.reconcile_nightly"
NEW = "snapshots.tasks.reconcile_nightly"


def rename(apps, schema_editor):
    periodic_task_rename(apps, old=OLD, new=NEW)


def rename_back(apps, schema_editor):
    periodic_task_rename(apps, old=NEW, new=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0004_viewer_group"),
        ("aggregation", "0004_reconcile_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(rename, rename_back)]
