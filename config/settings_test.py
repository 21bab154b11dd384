"""Test settings: the production module plus a handful of overrides (house rule 3, docs/architecture.md)."""

from __future__ import annotations

import os

# Fixed test secrets, set before the settings module reads the environment.
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=")
os.environ.setdefault("SIMULATOR_CONTROL_TOKEN", "test-control-token")
# The test client speaks plain http: no HTTPS redirect (production mode with PostgreSQL + Redis in CI).
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, REDIS_URL  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["NAME"] = ":memory:"
    DATABASES["default"]["OPTIONS"] = {}
WHITENOISE_AUTOREFRESH = True
