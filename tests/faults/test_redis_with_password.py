"""A Redis that requires a password: the broker and the cache work with it in the URL, a
wrong one is reported as "down", and the password never appears in the logs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from harness.private_redis import PrivateRedis
from tests.conftest import PROJECT_ROOT, _require

PASSWORD = "pa:ss/w@rd-7f3c"
PROBE = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
import django; django.setup()
from django.core.cache import cache
from web.selectors import broker_reachable
from events.services.enqueue import batch_enqueue_apply
print("broker", broker_reachable())
print("publish", batch_enqueue_apply(1))
try:
    cache.set("probe", 1)
    print("cache", cache.get("probe"))
except Exception as exc:
    print("cache error", type(exc).__name__)
"""


@pytest.fixture
def locked_redis(tmp_path: Path):
    _require(shutil.which("redis-server") is not None, "redis-server (apt-get install redis)")
    redis = PrivateRedis(tmp_path / "redis", password=PASSWORD)
    redis.start()
    yield redis
    redis.kill()


def _probe(url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=PROJECT_ROOT,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "snapagg_project.settings",
            "CELERY_BROKER_URL": url,
            "BROKER_SOCKET_TIMEOUT_SECONDS": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_broker_and_cache_work_with_a_password_in_the_url(locked_redis):
    probed = _probe(f"redis://:{quote(PASSWORD, safe='')}@127.0.0.1:{locked_redis.port}/0")

    assert probed.returncode == 0, probed.stderr
    assert probed.stdout.split("\n")[:3] == ["broker True", "publish True", "cache 1"]
    # The probe inherits CELERY_QUEUE, as this process does.
    assert locked_redis.queued(settings.CELERY_TASK_DEFAULT_QUEUE) == 1  # the task was published


def test_a_wrong_password_is_down_and_no_password_is_logged(locked_redis):
    wrong = "not-the-password-91ab"
    probed = _probe(f"redis://:{wrong}@127.0.0.1:{locked_redis.port}/0")

    assert probed.returncode == 0, probed.stderr
    assert probed.stdout.split("\n")[:2] == ["broker False", "publish False"]
    assert "cache error" in probed.stdout
    output = probed.stdout + probed.stderr
    assert "could not enqueue" in output.lower()  # the failure is logged...
    assert wrong not in output  # ...without the secret
    assert PASSWORD not in output
