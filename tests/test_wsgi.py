"""The WSGI module leaves what it loaded out of the garbage collector's full passes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.processes import PROJECT_ROOT
from tests.conftest import test_database_url

_PROBE = """
import gc, sys
import snapagg_project.wsgi
from django.conf import settings
print(gc.get_freeze_count(), settings.ROOT_URLCONF in sys.modules, "web.views" in sys.modules)
"""


@pytest.mark.django_db
def test_the_wsgi_module_loads_every_view_then_freezes_the_collector() -> None:
    # A process of its own: freezing is for the life of the process.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
            "DATABASE_URL": test_database_url(),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    frozen, urls_loaded, views_loaded = done.stdout.split()
    assert urls_loaded == views_loaded == "True"
    # Django, DRF and the project: far more than a bare interpreter's few thousand objects.
    assert int(frozen) > 50_000
