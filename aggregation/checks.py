"""System check: refuse to start with a reporting time zone other than the stored one."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from aggregation.selectors import reporting_timezone_mismatch_message, reporting_timezone_stored


@register()
def reporting_timezone_unchanged(app_configs, **kwargs) -> list[Error]:
    stored = reporting_timezone_stored()
    if stored is None or stored == settings.REPORTING_TIMEZONE:
        return []
    return [
        Error(
            reporting_timezone_mismatch_message(stored, settings.REPORTING_TIMEZONE),
            id="snapagg.E001",
        )
    ]
