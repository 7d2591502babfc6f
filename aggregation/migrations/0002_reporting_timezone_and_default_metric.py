"""Fix the reporting time zone (from REPORTING_TIMEZONE at first migrate) and create the
default metric. Neither is ever rewritten by a later migrate."""

import datetime as dt

from django.conf import settings
from django.db import migrations


def store_timezone_and_default_metric(apps, schema_editor):
    ReportingTimezone = apps.get_model("aggregation", "ReportingTimezone")
    Metric = apps.get_model("aggregation", "Metric")
    ReportingTimezone.objects.get_or_create(id=1, defaults={"name": settings.REPORTING_TIMEZONE})
    if not Metric.objects.filter(is_default=True).exists():
        Metric.objects.create(
            name="default",
            description="Events that name no metric.",
            allowed_lateness=dt.timedelta(days=1),
            too_late_policy="restate",
            is_default=True,
        )


class Migration(migrations.Migration):
    dependencies = [("aggregation", "0001_initial")]

    operations = [
        migrations.RunPython(store_timezone_and_default_metric, migrations.RunPython.noop),
    ]
