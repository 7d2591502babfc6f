"""WSGI entry point. Refuses to start when the reporting time zone was changed."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snapagg_project.settings")

application = get_wsgi_application()

from aggregation.selectors import reporting_timezone_verify  # noqa: E402

reporting_timezone_verify()
