"""The one settings module of Axisor, driven by the environment (see `.env.example` for every variable).

Two ways to run:

* **Embedded default** (neither ``DATABASE_URL`` nor ``REDIS_URL`` set): SQLite, the in-memory channel layer, Celery
  on the in-process ``memory://`` transport, the local LN Markets simulator as the exchange. Secrets that are not
  set are generated once into a git-ignored file (``var/local_secrets.json``), with a warning.
* **Production** (``DATABASE_URL`` and/or ``REDIS_URL`` set): PostgreSQL, ``channels_redis``, Celery on Redis. A
  missing mandatory secret raises ``ImproperlyConfigured`` at start-up instead of falling back to a default.
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets `admin.ModelAdmin[Model]` and other generic annotations work at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DATABASE_URL: str = env.str("DATABASE_URL", default="")
REDIS_URL: str = env.str("REDIS_URL", default="")
EMBEDDED = not DATABASE_URL and not REDIS_URL

DEBUG: bool = env.bool("DEBUG", default=False)
# Local state of the embedded default: SQLite file, generated secrets, demo login, simulator state.
VAR_DIR = Path(env.str("AXISOR_VAR_DIR", default=str(BASE_DIR / "var")))


def _mandatory_secret(name: str, local: dict[str, str] | None) -> str:
    """Read a secret from the environment (or ``NAME_FILE``); embedded mode falls back to the local file."""
    value: str = env.str(name, default="")
    file_name: str = env.str(f"{name}_FILE", default="")
    if file_name:
        value = Path(file_name).read_text().strip()
    if value:
        return value
    if local is not None:
        return local[name]
    raise ImproperlyConfigured(
        f"{name} is not set. It is mandatory when DATABASE_URL or REDIS_URL is set (production); see .env.example."
    )


_local: dict[str, str] | None = None
if EMBEDDED and not (env.str("SECRET_KEY", default="") and env.str("FIELD_ENCRYPTION_KEYS", default="")):
    from config.local_secrets import load_or_create

    _local = load_or_create(Path(env.str("AXISOR_LOCAL_SECRETS_FILE", default=str(VAR_DIR / "local_secrets.json"))))

SECRET_KEY = _mandatory_secret("SECRET_KEY", _local)
# Comma-separated Fernet keys for exchange credentials; the first encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEYS: list[str] = [
    k.strip() for k in _mandatory_secret("FIELD_ENCRYPTION_KEYS", _local).split(",") if k.strip()
]

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
if not DEBUG and "*" in ALLOWED_HOSTS:
    # A wildcard also switches off the WebSocket origin check (reliability.md §3).
    raise ImproperlyConfigured("ALLOWED_HOSTS must not contain '*' unless DEBUG is on.")
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "accounts",
    "lnmarkets",
    "automations",
    "realtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.OverloadMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    _pool_max = env.int("DB_POOL_MAX_SIZE", default=10)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _pool_max > 0:
        # A connection pool per process (psycopg_pool). Under ASGI every HTTP request runs in a thread of its own,
        # so persistent per-thread connections (CONN_MAX_AGE) would pile up until PostgreSQL refuses clients.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, _pool_max),
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(VAR_DIR / "db.sqlite3")),
            # WAL lets the web process, the worker threads and the simulator seeding read while one writes.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: reliability.md §2. Redis in production; the in-process memory transport for the embedded default.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# Longer than the slowest task; no countdown or ETA may exceed it (reliability.md §2).
CELERY_VISIBILITY_TIMEOUT: int = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 10
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
AUTOMATION_SWEEP_SECONDS: int = env.int("AUTOMATION_SWEEP_SECONDS", default=10)
RECONCILE_SECONDS: int = env.int("RECONCILE_SECONDS", default=30)

# Exchange endpoints (lnmarkets-v3.md §1.2), overridable per network.
SIMULATOR_HOST: str = env.str("SIMULATOR_HOST", default="127.0.0.1")
SIMULATOR_PORT: int = env.int("SIMULATOR_PORT", default=8765)
SIMULATOR_CONTROL_TOKEN: str = env.str("SIMULATOR_CONTROL_TOKEN", default="")
LNMARKETS_URLS: dict[str, dict[str, str]] = {
    "mainnet": {
        "rest": env.str("LNMARKETS_MAINNET_REST_URL", default="https://api.lnmarkets.com/v3"),
        "stream": env.str("LNMARKETS_MAINNET_STREAM_URL", default="wss://stream.lnmarkets.com/v1"),
    },
    "signet": {
        "rest": env.str("LNMARKETS_SIGNET_REST_URL", default="https://api.signet.lnmarkets.com/v3"),
        "stream": env.str("LNMARKETS_SIGNET_STREAM_URL", default="wss://stream.signet.lnmarkets.com/v1"),
    },
    "simulator": {
        "rest": env.str("LNMARKETS_SIMULATOR_REST_URL", default=f"http://{SIMULATOR_HOST}:{SIMULATOR_PORT}/v3"),
        "stream": env.str("LNMARKETS_SIMULATOR_STREAM_URL", default=f"ws://{SIMULATOR_HOST}:{SIMULATOR_PORT}/v1"),
    },
}
LNMARKETS_HTTP_TIMEOUT: float = env.float("LNMARKETS_HTTP_TIMEOUT", default=10.0)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

# Cookies and headers. Secure cookies need HTTPS; the embedded default serves plain http on loopback.
SECURE_COOKIES: bool = env.bool("SECURE_COOKIES", default=not EMBEDDED)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Never show credentials in error reports (debug page, error e-mails), whatever a frame calls them.
DEFAULT_EXCEPTION_REPORTER_FILTER = "accounts.reporting.CredentialSafeExceptionReporterFilter"

LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
