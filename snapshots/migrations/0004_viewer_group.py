"""Create the read-only "viewer" group: its members read the dashboard, day pages and
what-changed pages, and cannot post events or operate (those need a staff account)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "viewer"
PERMISSIONS = [
    ("aggregation", "view_metric"),
    ("aggregation", "view_daytotal"),
    ("snapshots", "view_snapshot"),
    ("events", "view_event"),
]


def create_viewer_group(apps, schema_editor):
    # Permissions are normally created after all migrations ran (post_migrate); create
    # them now so a fresh database gets a group that already holds them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )


def remove_viewer_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0003_snapshot_schedule"),
        ("aggregation", "0002_reporting_timezone_and_default_metric"),
        ("events", "0002_sweeper_schedule"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_viewer_group, remove_viewer_group)]
