"""WSGI entry point. Refuses to start when the reporting time zone was changed.

Each web worker imports everything a request needs here (the URL configuration imports every
view), then sets all of it aside from the cyclic garbage collector (`gc.freeze`). Otherwise a
full collection walks every object of Django and the project, about 65 ms on a 2-core
machine, and lands on whichever request happens to be allocating: with 1,000-event batches,
about one request in a hundred, i.e. the ingest's p99 acknowledgement. Frozen, a full
collection takes about 3.5 ms.
"""

from __future__ import annotations

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "snapagg_project.settings")

application = get_wsgi_application()

from aggregation.selectors import reporting_timezone_verify  # noqa: E402

reporting_timezone_verify()
import_module(settings.ROOT_URLCONF)
gc.freeze()
