"""Production settings, secrets in URLs, and JSON-only Celery."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.db import connection

from snapagg_project.celery import app
from tests.conftest import PROJECT_ROOT, uses_postgresql

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "db": [db["ENGINE"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]],
    "broker": s.CELERY_BROKER_URL,
    "cache": [s.CACHES["default"]["BACKEND"], s.CACHES["default"].get("LOCATION")],
    "secure": [s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS,
               s.SECURE_SSL_REDIRECT, s.ALLOWED_HOSTS],
}))
"""


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "snapagg_project.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _production_env(**extra: str) -> dict[str, str]:
    return {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "metrics.example.com",
        **extra,
    }


def test_urls_with_passwords_are_parsed_with_special_characters_decoded():
    shown = _run_python(
        SHOW_SETTINGS,
        DATABASE_URL="postgres://snap:p%40ss%3Aw%2Frd@db.internal:6543/metrics",
        CELERY_BROKER_URL="redis://:s3cr%2Ft@redis.internal:6380/3",
    )

    assert shown.returncode == 0, shown.stderr
    parsed = json.loads(shown.stdout)
    assert parsed["db"] == [
        "django.db.backends.postgresql", "snap", "p@ss:w/rd", "db.internal", 6543, "metrics"
    ]  # fmt: skip
    # Celery and redis-py decode the URL themselves; the cache follows the broker.
    assert parsed["broker"] == "redis://:s3cr%2Ft@redis.internal:6380/3"
    assert parsed["cache"] == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://:s3cr%2Ft@redis.internal:6380/3",
    ]


def test_a_separate_cache_url_and_local_memory_without_redis():
    separate = _run_python(
        SHOW_SETTINGS,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/1",
        CACHE_URL="redis://:pw@cache.internal:6379/2",
    )
    local = _run_python(SHOW_SETTINGS, CELERY_BROKER_URL="filesystem://")

    assert json.loads(separate.stdout)["cache"][1] == "redis://:pw@cache.internal:6379/2"
    assert json.loads(local.stdout)["cache"] == [
        "django.core.cache.backends.locmem.LocMemCache",
        None,
    ]


@pytest.mark.django_db
def test_the_database_url_with_a_password_connects():
    db = connection.settings_dict
    host = db["HOST"] or "127.0.0.1"
    if host.startswith("/"):  # the embedded PostgreSQL's socket folder
        host = quote(host, safe="")
    url = f"postgres://{db['USER']}:any%40password@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "connection.ensure_connection()\n"
        "print(connection.settings_dict['PASSWORD'])\n"
    )

    shown = _run_python(code, DATABASE_URL=url)

    assert uses_postgresql()
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "any@password"


def test_production_settings_pass_the_deploy_check():
    # pytest-playwright sets DJANGO_ALLOW_ASYNC_UNSAFE in this process; production does not.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_ROOT,
        env={**env, **_production_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_production_settings_are_secure():
    shown = _run_python(SHOW_SETTINGS, **_production_env())

    assert shown.returncode == 0, shown.stderr
    debug, session_secure, csrf_secure, hsts, ssl_redirect, hosts = json.loads(shown.stdout)[
        "secure"
    ]
    assert (debug, session_secure, csrf_secure, ssl_redirect) == (False, True, True, True)
    assert hsts >= 31_536_000
    assert hosts == ["metrics.example.com"]


def test_production_refuses_to_start_without_a_secret_key():
    shown = _run_python(SHOW_SETTINGS, DEBUG="0", SECRET_KEY="")

    assert shown.returncode != 0
    assert "SECRET_KEY must be set" in shown.stderr


def test_celery_accepts_and_sends_json_only():
    assert list(app.conf.accept_content) == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
