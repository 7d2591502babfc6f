"""snapagg settings: every value comes from the environment, with defaults that run the demo.

Helpers fail loudly on malformed values instead of guessing.
"""

from __future__ import annotations

import os
from pathlib import Path
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
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "django_tables2",
    "aggregation",
    "events",
    "snapshots",
    "web",
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
# PostgreSQL in production and CI; a SQLite file when DATABASE_URL is not set, so the demo
# runs on a machine with nothing installed.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'snapagg.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE takes SQLite's write lock when a transaction starts: web, worker and
        # beat then serialise their writes instead of failing with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

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
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 10, minimum=1)

# --- Celery -----------------------------------------------------------------------------
# Without CELERY_BROKER_URL the broker is a folder on disk: no server needed for the demo.
BROKER_FOLDER = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
BROKER_SOCKET_TIMEOUT_SECONDS = env_float("BROKER_SOCKET_TIMEOUT_SECONDS", 1.0, minimum=0.1)
# After a failed publish a web process leaves new batches to the sweeper this long, so the
# API keeps answering promptly while Redis is down (see docs/reliability.md).
BROKER_PUBLISH_PAUSE_SECONDS = env_float("BROKER_PUBLISH_PAUSE_SECONDS", 5.0)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    (BROKER_FOLDER / "queue").mkdir(parents=True, exist_ok=True)
    (BROKER_FOLDER / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "store_processed": False,
        # Broadcasts (the operations page's worker ping) go through this folder; kombu's
        # default is "control" in the current directory.
        "control_folder": str(BROKER_FOLDER / "control"),
    }
else:
    # Must exceed the longest task, or Redis redelivers a task that is still running.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    # A Redis that accepts connections but does not answer (hung, paused, partitioned) would
    # otherwise block the after-commit publish of an API request, and the health probe,
    # forever: redis-py waits without limit by default. See docs/reliability.md.
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
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
# Shared by every gunicorn worker (the ingest rate limit counts there). Redis when a Redis
# URL is known (CACHE_URL, else the Redis broker), local memory otherwise (one process).
REDIS_SCHEMES = ("redis://", "rediss://")
CACHE_URL = env_str(
    "CACHE_URL", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(REDIS_SCHEMES) else ""
)
if CACHE_URL.startswith(REDIS_SCHEMES):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
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
    raise ImproperlyConfigured("CACHE_URL must be redis://..., rediss://... or locmem://")

# --- API --------------------------------------------------------------------------------
# Requests per token on POST /api/events/ (a fixed window in the shared cache); 429 with
# Retry-After beyond it. "off" disables the limit.
INGEST_RATE_LIMIT = env_rate("INGEST_RATE_LIMIT", "100/second")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["common.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
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
    "COMPONENT_SPLIT_REQUEST": True,
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
