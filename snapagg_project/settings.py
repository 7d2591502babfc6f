"""snapagg settings: every value comes from the environment, with defaults that run the demo.

Helpers fail loudly on malformed values instead of guessing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SNAPAGG_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc
    if not value >= minimum:  # also refuses NaN
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """A rate such as "100/second", "6000/minute", "20/s"; "off" (or 0) for no limit.
    Returns (requests, period in seconds)."""
    raw = env_str(name, default).strip().lower()
    if raw in {"", "off", "0", "none"}:
        return None
    periods = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    count, _, period = raw.partition("/")
    if not count.isdigit() or int(count) < 1 or not period or period[0] not in periods:
        raise ImproperlyConfigured(
            f"{name} must look like 100/second, 6000/minute or off; got {raw!r}"
        )
    return int(count), periods[period[0]]


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_timezone(name: str, default: str) -> str:
    value = env_str(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a known IANA time zone") from exc
    return value


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug-runs"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's and Redoc's files (/api/docs/, /api/redoc/)
    "django_celery_beat",
    "django_tables2",
    "aggregation",
    "events",
    "archive",
    "snapshots",
    "alerts",
    "web",
    "apikeys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "snapagg_project.urls"
WSGI_APPLICATION = "snapagg_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# PostgreSQL, always. Without DATABASE_URL, `make run` and `make test` start an embedded
# PostgreSQL (python -m embedded, data under var/) and give its URL to every process.
RUN_EMBEDDED = "`.venv/bin/python -m embedded run -- COMMAND` (as `make run` and `make test` do)"
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not set: set it to a PostgreSQL URL, or run through {RUN_EMBEDDED}, "
        "which starts an embedded PostgreSQL and Redis and sets it"
    )
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"DATABASE_URL must be a PostgreSQL URL (postgres://...), not {DATABASE_URL.split(':')[0]}:"
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
USE_I18N = True
USE_TZ = True
# Django's own display zone; the reporting zone that defines a "day" is separate and fixed.
TIME_ZONE = "UTC"
# The zone whose calendar days events are counted in. Stored at first migrate; a different
# value later stops startup (changing it would silently move events between days).
REPORTING_TIMEZONE = env_timezone("REPORTING_TIMEZONE", "UTC")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Raw event archive (docs/operations.md "Archive") ----------------------------------
# A folder under var/archive/ by default; with ARCHIVE_S3_BUCKET set, S3-compatible object
# storage through django-storages (credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
# or the machine's role, read by boto3 itself).
ARCHIVE_S3_BUCKET = env_str("ARCHIVE_S3_BUCKET", "")
if ARCHIVE_S3_BUCKET:
    STORAGES["archive"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARCHIVE_S3_BUCKET,
            "location": env_str("ARCHIVE_S3_PREFIX", "snapagg-archive"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    STORAGES["archive"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("ARCHIVE_DIR", str(VAR_DIR / "archive"))},
    }
# Parsed archive files kept in memory per process (explanations of archived days).
ARCHIVE_CACHE_FILES = env_int("ARCHIVE_CACHE_FILES", 32, minimum=0)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Ingest limits ----------------------------------------------------------------------
INGEST_MAX_EVENTS = env_int("INGEST_MAX_EVENTS", 10_000, minimum=1)
# Enforced by the ingest view itself (DRF would otherwise read the whole body first).
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
# An event_time further in the future than this is refused (clock skew allowance).
INGEST_MAX_FUTURE_SKEW_SECONDS = env_int("INGEST_MAX_FUTURE_SKEW_SECONDS", 3600)

# --- Snapshots and sweeping -------------------------------------------------------------
SNAPSHOT_INTERVAL_SECONDS = env_int("SNAPSHOT_INTERVAL_SECONDS", 300, minimum=1)
SWEEP_AFTER_SECONDS = env_int("SWEEP_AFTER_SECONDS", 60, minimum=1)
SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 30, minimum=1)
# An apply task also claims other batches waiting to be applied (oldest first, those no other
# apply holds) and applies them in the same transaction, up to these many batches and events in
# all: a burst of small batches costs one transaction. 1 applies each batch alone.
APPLY_COALESCE_MAX_BATCHES = env_int("APPLY_COALESCE_MAX_BATCHES", 100, minimum=1)
APPLY_COALESCE_MAX_EVENTS = env_int("APPLY_COALESCE_MAX_EVENTS", 20_000, minimum=1)
# Publishing fewer apply messages (events/services/enqueue.py): while an apply task is queued
# or running, new batches publish none and that task's end takes them. This bounds how long a
# flag whose task vanished (a killed worker) keeps new batches from publishing: after it,
# they publish again; the sweeper backs both up. 0 publishes one message per batch.
APPLY_PUBLISH_FLAG_SECONDS = env_int("APPLY_PUBLISH_FLAG_SECONDS", 30, minimum=0)
# An apply task that finds batches still waiting when it ends applies them itself, for up
# to this long (then it publishes a task for them); well under the flag's life and the
# task's time limit. 0: it always publishes.
APPLY_TASK_KEEP_GOING_SECONDS = env_float("APPLY_TASK_KEEP_GOING_SECONDS", 5.0, minimum=0.0)
# Such a task first lets the batch it takes on be this old, so that what commits meanwhile is
# applied with it in one transaction (group commit). 0: it applies it at once.
APPLY_GATHER_SECONDS = env_float("APPLY_GATHER_SECONDS", 0.1, minimum=0.0)
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10, minimum=1)

# --- Alerts and anomaly flags (docs/operations.md "Alerts") ------------------------------
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_SECRET = env_str("ALERT_WEBHOOK_SECRET", "")
ALERT_WEBHOOK_TIMEOUT_SECONDS = env_float("ALERT_WEBHOOK_TIMEOUT_SECONDS", 5.0, minimum=0.1)
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("ALERT_DELIVERY_MAX_ATTEMPTS", 8, minimum=1)
ALERT_RETRY_BACKOFF_SECONDS = env_float("ALERT_RETRY_BACKOFF_SECONDS", 30.0)
ALERT_RETRY_BACKOFF_MAX_SECONDS = env_float("ALERT_RETRY_BACKOFF_MAX_SECONDS", 3600.0)
ALERT_REQUEUE_AFTER_SECONDS = env_int("ALERT_REQUEUE_AFTER_SECONDS", 300, minimum=1)
ALERT_CHECK_INTERVAL_SECONDS = env_int("ALERT_CHECK_INTERVAL_SECONDS", 60, minimum=1)
ALERT_BACKLOG_STALE_SECONDS = env_int("ALERT_BACKLOG_STALE_SECONDS", 600, minimum=1)
ALERT_EMAIL_ADMINS = env_bool("ALERT_EMAIL_ADMINS", True)
# ADMINS="ops@example.com,oncall@example.com": alert emails go there (Django's mail settings).
ADMINS = [(address, address) for address in env_list("ADMINS", "")]
SERVER_EMAIL = env_str("SERVER_EMAIL", "snapagg@localhost")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
ANOMALY_THRESHOLD = env_str("ANOMALY_THRESHOLD", "3.5")
if not re.fullmatch(r"\d+(\.\d+)?", ANOMALY_THRESHOLD):
    raise ImproperlyConfigured(f"ANOMALY_THRESHOLD must be a number, got {ANOMALY_THRESHOLD!r}")
# Both count a metric's days with late corrections (snapshots/services/anomaly.py): no flag
# before MIN_HISTORY of them; each correction is compared with the last HISTORY_SIZE.
ANOMALY_MIN_HISTORY = env_int("ANOMALY_MIN_HISTORY", 10, minimum=1)
ANOMALY_HISTORY_SIZE = env_int("ANOMALY_HISTORY_SIZE", 100, minimum=1)

# --- Celery -----------------------------------------------------------------------------
# Redis, always. Without CELERY_BROKER_URL, `make run` and `make test` start an embedded
# Redis (python -m embedded) on a unix socket under var/: redis+socket:///path?virtual_host=N.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
if not CELERY_BROKER_URL:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL is not set: set it to a Redis URL, or run through {RUN_EMBEDDED}"
    )
BROKER_SOCKET_TIMEOUT_SECONDS = env_float("BROKER_SOCKET_TIMEOUT_SECONDS", 1.0, minimum=0.1)
# After a failed publish a web process leaves new batches to the sweeper this long, so the
# API keeps answering promptly while Redis is down (see docs/reliability.md).
BROKER_PUBLISH_PAUSE_SECONDS = env_float("BROKER_PUBLISH_PAUSE_SECONDS", 5.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Must exceed the longest task, or Redis redelivers a task that is still running.
    "visibility_timeout": 3600,
    # A Redis that accepts connections but does not answer (hung, paused, partitioned) would
    # otherwise block the after-commit publish of an API request, and the health probe,
    # forever: redis-py waits without limit by default. See docs/reliability.md. (kombu
    # drops the TCP-only ones for a unix socket.)
    "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
    "socket_keepalive": True,
}
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_SOCKET_TIMEOUT_SECONDS
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "snapagg")
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Cache ------------------------------------------------------------------------------
# Shared by every gunicorn worker (the ingest rate limit counts there): the broker's Redis
# unless CACHE_URL names another (or locmem:// for one process's memory).


def redis_cache_location(url: str) -> str:
    """redis-py's form of a Redis URL ("" if it is not one): kombu's
    redis+socket:///path?virtual_host=N is redis-py's unix:///path?db=N."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return url
    if not url.startswith("redis+socket://"):
        return ""
    parts = urlsplit(url)
    db = parse_qs(parts.query).get("virtual_host", ["0"])[0]
    return f"unix://{parts.netloc}{parts.path}?db={db}"


CACHE_URL = env_str("CACHE_URL", redis_cache_location(CELERY_BROKER_URL))
if redis_cache_location(CACHE_URL):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_cache_location(CACHE_URL),
            "KEY_PREFIX": "snapagg",
            # Same reason as the broker: a hung Redis must not hang requests.
            "OPTIONS": {
                "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
                "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            },
        }
    }
elif CACHE_URL in {"", "locmem://"}:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(
        "CACHE_URL must be redis://..., rediss://..., unix://..., redis+socket://... or locmem://"
    )

# --- API --------------------------------------------------------------------------------
# Read APIs (days, aggregates) keep a rendered answer this long in the cache, keyed by the
# query and the revisions it depends on (common/conditional.py): a new apply or snapshot
# changes the key at once, so this only bounds memory and the life of a storm's shared
# answer. 0 turns the cache off (ETags and 304s stay).
READ_CACHE_SECONDS = env_int("READ_CACHE_SECONDS", 10)
# Part of every cached read's key (not an environment variable); tests give each test its
# own.
READ_CACHE_NAMESPACE = "1"
# Requests per token on POST /api/events/ (a fixed window in the shared cache); 429 with
# Retry-After beyond it. "off" disables the limit.
INGEST_RATE_LIMIT = env_rate("INGEST_RATE_LIMIT", "100/second")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.authentication.ApiKeyAuthentication"],
    # Reads need the key's "read" scope, anything else "operate", unless a view says more.
    "DEFAULT_PERMISSION_CLASSES": ["apikeys.permissions.ScopeForMethod"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "common.api_errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "snapagg API",
    "DESCRIPTION": "Ingest events and read daily totals with their immutable snapshot history.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ loads Swagger UI from our own static files, not from a CDN, and does not
    # send the schema to swagger.io's online validator.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # /api/redoc/ likewise: the sidecar's Redoc bundle, and the system's fonts instead of the
    # Google Fonts that drf-spectacular's own template loads (templates/api/redoc.html).
    "REDOC_DIST": "SIDECAR",
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
                "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', sans-serif"},
                "code": {"fontFamily": "ui-monospace, 'Cascadia Mono', Menlo, monospace"},
            }
        },
    },
    "COMPONENT_SPLIT_REQUEST": True,
    # Several serializers have a field named "status" with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "EventStatusEnum": ["received", "applied", "quarantined", "rejected_too_late"],
        "DayStatusEnum": ["live", "provisional", "final"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.api_schema.add_error_responses",
    ],
}

# --- Production hardening (active when DEBUG is off) --------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# One JSON object per line with LOG_FORMAT=json; `extra` fields (event_id, batch_id, run_id)
# become keys of the object.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING["formatters"]["json"] = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
    "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
}
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT

# Optional error reporting: SENTRY_DSN turns on sentry-sdk for Django and Celery.
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        send_default_pii=False,
    )
