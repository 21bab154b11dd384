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

from config.hardening import proxy_ssl_header, refuse_unsafe_production
from config.var_dir import secure_var_dir

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
    # A wildcard also switches off the WebSocket origin check (docs/reliability.md §3).
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
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "accounts",
    "lnmarkets",
    "automations",
    "history",
    "realtime",
    "backtest",
    "notifications",
    "launch",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # The signed-in user's language and time zone (the settings page) over the browser's.
    "accounts.preferences.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.middleware.NoStoreMiddleware",
    "config.middleware.OverloadMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by the authentication backend into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    _sqlite_path = Path(env.str("SQLITE_PATH", default=str(VAR_DIR / "db.sqlite3")))
    # var/ holds session keys and password hashes: 0700, its files 0600, the SQLite file created 0600 (issue #12).
    secure_var_dir(VAR_DIR, private_files=(_sqlite_path,))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(_sqlite_path),
            # WAL lets the web process, the worker threads and the simulator seeding read while one writes.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }

# Items one delivery task takes side by side, each in a thread (order intents, notifications: axisor_bus.side_by_side):
# up to 8 with a connection pool (two of its connections stay for the task's own thread and the rest); 1 without
# one (SQLite: one writer at a time anyway). Also the size of the batches notifications are queued in.
_DB_POOL = DATABASES["default"].get("OPTIONS", {}).get("pool")
DELIVERY_THREADS: int = max(1, env.int("DELIVERY_THREADS", default=min(8, _DB_POOL["max_size"] - 2) if _DB_POOL else 1))
# Order intents are queued in batches of two per thread: what a batch shares (its task, the lease, read and claim of
# its intents, the transaction that settles its closes) is then done once for twice as many (issue #14, the crash
# tick: 11.0 s with batches of 8, 9.5 s with 16, 9.0 s with 32); 1 under SQLite.
DELIVERY_BATCH: int = max(1, env.int("DELIVERY_BATCH", default=2 * DELIVERY_THREADS if DELIVERY_THREADS > 1 else 1))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "accounts:login"

# django-axes first: it refuses a locked-out username + address before any password is hashed.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# Login throttling (django-axes; docs/reliability.md §4, "Login and second factor"): a username is locked out from one
# client address after AXES_FAILURE_LIMIT failures, for AXES_COOLOFF_MINUTES. Keyed on the username + address pair, so a
# shared address (NAT, office) never locks everybody out, and a stranger cannot lock a user out from elsewhere.
AXES_FAILURE_LIMIT: int = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME: float = env.float("AXES_COOLOFF_MINUTES", default=15.0) / 60.0  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
AXES_HTTP_RESPONSE_CODE = 429

# Two-factor authentication (django-otp, TOTP): optional per user, asked at login and again before exchange keys
# are added or changed. OTP_TOTP_ISSUER names Axisor in the authenticator app.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Axisor")
OTP_TOTP_THROTTLE_FACTOR = 1

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "config.cache.ReusingRedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.channel_layer.BoundedRedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "max_connections": env.int("CHANNEL_LAYER_MAX_CONNECTIONS", default=64),
                "pool_timeout": env.float("CHANNEL_LAYER_POOL_TIMEOUT", default=10.0),
            },
        }
    }
    # Sessions read from Redis first (written through to the database): a dashboard socket's handshake and every
    # poll look the session up, and a storm of them should not queue on the database.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Admission control per server process (realtime.admission): work in flight, how many may wait and for how long,
# and the retry hint given to a shed client. HTTP: a request holds a database connection, so at most the pool's
# size run at once. WS_HANDSHAKE: session lookup and ``connect`` until the accept. WS_SNAPSHOT: an accepted
# socket's first snapshot (it waits rather than being shed: it is already connected). A handshake may wait up to
# WS_HANDSHAKE_MAX_WAIT_S: run Daphne with a longer --websocket_connect_timeout (README: 10 s), or Daphne drops it
# first (its default is 5 s) and the browser sees a broken handshake instead of a 4429.
HTTP_CONCURRENCY: int = env.int("HTTP_CONCURRENCY", default=8)
HTTP_BACKLOG: int = env.int("HTTP_BACKLOG", default=1000)
HTTP_MAX_WAIT_S: float = env.float("HTTP_MAX_WAIT_S", default=8.0)
HTTP_RETRY_AFTER_MS: int = env.int("HTTP_RETRY_AFTER_MS", default=5000)
WS_HANDSHAKE_CONCURRENCY: int = env.int("WS_HANDSHAKE_CONCURRENCY", default=16)
WS_HANDSHAKE_BACKLOG: int = env.int("WS_HANDSHAKE_BACKLOG", default=1000)
WS_HANDSHAKE_MAX_WAIT_S: float = env.float("WS_HANDSHAKE_MAX_WAIT_S", default=5.0)
WS_HANDSHAKE_RETRY_AFTER_MS: int = env.int("WS_HANDSHAKE_RETRY_AFTER_MS", default=2000)
WS_SNAPSHOT_CONCURRENCY: int = env.int("WS_SNAPSHOT_CONCURRENCY", default=4)
WS_SNAPSHOT_BACKLOG: int = env.int("WS_SNAPSHOT_BACKLOG", default=100_000)
WS_SNAPSHOT_MAX_WAIT_S: float = env.float("WS_SNAPSHOT_MAX_WAIT_S", default=60.0)
WS_SNAPSHOT_RETRY_AFTER_MS: int = env.int("WS_SNAPSHOT_RETRY_AFTER_MS", default=3000)

# Celery: docs/reliability.md §2. Redis in production; the in-process memory transport for the embedded default.
CELERY_BROKER_URL = REDIS_URL or "memory://"
# On redis://, kombu's transport with one fix: a worker survives losing Redis while it holds unacknowledged
# messages (config/broker_transport.py). Other schemes (rediss://, sentinel://) keep kombu's own.
if REDIS_URL.startswith("redis://"):
    CELERY_BROKER_TRANSPORT = "config.broker_transport:Transport"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# Longer than the slowest task; no countdown or ETA may exceed it (docs/reliability.md §2).
CELERY_VISIBILITY_TIMEOUT: int = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 10
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fix-up closes the database connections around every task and, in a prefork child, the whole
# connection pool too: two new PostgreSQL connections (server processes) per task, which halved the workers'
# throughput on a crash tick (issue #14). It now closes them once per 1,000 tasks; before each task
# ``config.celery`` hands back to the pool any connection that is unusable or past its age (CONN_MAX_AGE=0: all).
CELERY_DB_REUSE_MAX = 500
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
AUTOMATION_SWEEP_SECONDS: int = env.int("AUTOMATION_SWEEP_SECONDS", default=10)
RECONCILE_SECONDS: int = env.int("RECONCILE_SECONDS", default=30)
# Re-queues order intents whose delivery was lost (their lease ran out): docs/exactly-once.md.
INTENT_SWEEP_SECONDS: int = env.int("INTENT_SWEEP_SECONDS", default=10)
# The exchange refuses a signature whose timestamp is more than this many seconds from its clock (docs/protocol.md
# §3: 30 s); with the send window it sets an order attempt's fence. Never set it below the exchange's real window.
LNMARKETS_TIMESTAMP_WINDOW_SECONDS: int = env.int("LNMARKETS_TIMESTAMP_WINDOW_SECONDS", default=30)
ORDER_SEND_WINDOW_SECONDS: float = env.float("ORDER_SEND_WINDOW_SECONDS", default=10.0)
# Fault injection for the reliability battery only (tests/faults): pause between an order's claim and its send.
FAULT_PAUSE_BEFORE_SEND_SECONDS: float = env.float("FAULT_PAUSE_BEFORE_SEND_SECONDS", default=0.0)

# Exchange endpoints (docs/protocol.md §1.2), overridable per network.
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
# The feed process opens one private stream socket per enabled account, at most this many connects per second
# (docs/exchange-events.md): 1,000 accounts are all live within a minute, and a reconnect storm stays paced.
LNMARKETS_STREAM_CONNECTS_PER_SECOND: float = env.float("LNMARKETS_STREAM_CONNECTS_PER_SECOND", default=20.0)

# Notifications (docs/notifications.md): Telegram Bot API, e-mail and signed webhooks, on the `notify` queue.
TELEGRAM_API_BASE_URL: str = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org")
TELEGRAM_BOT_TOKEN: str = env.str("TELEGRAM_BOT_TOKEN", default="")
TELEGRAM_BOT_USERNAME: str = env.str("TELEGRAM_BOT_USERNAME", default="")
# Production option: Telegram posts updates to /notifications/telegram/webhook with this secret in its header.
TELEGRAM_WEBHOOK_SECRET: str = env.str("TELEGRAM_WEBHOOK_SECRET", default="")
TELEGRAM_COMMANDS_PER_MINUTE: int = env.int("TELEGRAM_COMMANDS_PER_MINUTE", default=20)
NOTIFY_HTTP_TIMEOUT: float = env.float("NOTIFY_HTTP_TIMEOUT", default=10.0)
NOTIFY_MAX_ATTEMPTS: int = env.int("NOTIFY_MAX_ATTEMPTS", default=6)
NOTIFY_LEASE_SECONDS: int = env.int("NOTIFY_LEASE_SECONDS", default=60)
NOTIFY_SWEEP_SECONDS: int = env.int("NOTIFY_SWEEP_SECONDS", default=30)
NOTIFY_BURST: int = env.int("NOTIFY_BURST", default=3)
NOTIFY_DAILY_SUMMARY_HOUR: int = env.int("NOTIFY_DAILY_SUMMARY_HOUR", default=7)
# Webhooks to loopback/private addresses: allowed in the embedded default (one machine), refused in production.
NOTIFY_WEBHOOK_ALLOW_PRIVATE: bool = env.bool("NOTIFY_WEBHOOK_ALLOW_PRIVATE", default=not REDIS_URL)
NOTIFY_WATCH_SECONDS: int = env.int("NOTIFY_WATCH_SECONDS", default=15)
NOTIFY_FEED_STALE_SECONDS: int = env.int("NOTIFY_FEED_STALE_SECONDS", default=30)
EMAIL_BACKEND: str = env.str(
    "EMAIL_BACKEND",
    default=f"django.core.mail.backends.{'smtp' if REDIS_URL else 'console'}.EmailBackend",
)
EMAIL_FILE_PATH: str = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST: str = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT: int = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER: str = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD: str = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS: bool = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT: int = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="axisor@localhost")

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

# HTTPS behind the TLS proxy (production, SECURE_COOKIES on): the proxy terminates TLS and sets the header named by
# SECURE_PROXY_SSL_HEADER (X-Forwarded-Proto: https), so request.is_secure() is true, HSTS is sent, plain http is
# redirected and redirects are checked with require_https. Unsafe production values stop start-up.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.str("SECURE_PROXY_SSL_HEADER", default=""))
SECURE_SSL_REDIRECT: bool = env.bool("SECURE_SSL_REDIRECT", default=SECURE_COOKIES)
SECURE_HSTS_SECONDS: int = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SECURE_COOKIES else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_COOKIES)
SECURE_HSTS_PRELOAD: bool = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_COOKIES)
# /healthz, /readyz and /metrics answer probes and scrapers on plain http from the supervisor or load balancer.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# How many reverse proxies append to X-Forwarded-For in front of Daphne (0: use the socket's peer address). The
# login throttle keys on this client address, so it must not be spoofable: count only proxies you run.
TRUSTED_PROXY_COUNT: int = env.int("TRUSTED_PROXY_COUNT", default=0)
if not EMBEDDED:
    refuse_unsafe_production(
        debug=DEBUG, allowed_hosts=ALLOWED_HOSTS, ssl_redirect=SECURE_SSL_REDIRECT, proxy_header=SECURE_PROXY_SSL_HEADER
    )

# Content-Security-Policy (django-csp): every script and style is a file from this origin; no inline code (one
# exception, by hash: the chart library's attribution <style>), no third party. The dashboard's socket is
# same-origin ('self' covers ws:/wss: to this host).
CHART_ATTRIBUTION_STYLE_HASH = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # plus the one <style> the vendored chart library inserts for TradingView's attribution logo, by hash
        # (tests/security/test_production_settings.py recomputes it from static/vendor/lightweight-charts)
        "style-src": ["'self'", CHART_ATTRIBUTION_STYLE_HASH],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Never show credentials in error reports (debug page, error e-mails), whatever a frame calls them; passwords
# inside service URLs are masked in the finished report and in every log line (config.redaction).
DEFAULT_EXCEPTION_REPORTER_FILTER = "accounts.reporting.CredentialSafeExceptionReporterFilter"
DEFAULT_EXCEPTION_REPORTER = "config.redaction.RedactingExceptionReporter"

LOG_LEVEL: str = env.str("LOG_LEVEL", default="INFO")
# "plain" (default) or "json": one JSON object per line for a log collector.
LOG_FORMAT: str = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.redaction.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {
            "()": "config.redaction.RedactingJsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # urllib3 logs request paths at DEBUG: the Telegram Bot API path holds the bot token.
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "INFO"}, "urllib3": {"level": "INFO"}},
}

# Operations (README "Operations"): /readyz thresholds and the worker heartbeat (config.health).
READYZ_MAX_TICK_AGE_S: float = env.float("READYZ_MAX_TICK_AGE_S", default=60.0)
READYZ_MAX_HEARTBEAT_AGE_S: float = env.float("READYZ_MAX_HEARTBEAT_AGE_S", default=90.0)
WORKER_HEARTBEAT_SECONDS: float = env.float("WORKER_HEARTBEAT_SECONDS", default=30.0)
# Networks whose market feed /readyz checks (default: every network an enabled account uses).
READYZ_FEED_NETWORKS: list[str] = env.list("READYZ_FEED_NETWORKS", default=[])
# Bearer token that /metrics requires when set (Authorization: Bearer <token>); loopback needs none.
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
