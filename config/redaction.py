"""Mask secrets inside URLs (``scheme://user:password@host``) and known secret values in error pages and logs.

``DATABASE_URL`` and ``REDIS_URL`` carry their passwords, and Django copies them into ``DATABASES``, ``CACHES``,
``CHANNEL_LAYERS`` and ``CELERY_BROKER_URL``: names that Django's settings filter does not hide. Every error page
(``RedactingExceptionReporter``) and every log line (``RedactingFormatter``, ``RedactingJsonFormatter``) goes
through ``redact`` as a last step, so a URL password never leaves the process whatever variable holds it.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.views.debug import ExceptionReporter
from pythonjsonlogger.json import JsonFormatter

MASK = "********"
# scheme://[user]:password@ — the password is whatever stands between the first ':' after '//' and the last '@'
# before the host (passwords may contain '@' when percent-encoding was forgotten; the host never does).
_URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s'\"]*:)(?P<password>[^\s'\"/]*)@")
_MIN_SECRET_LEN = 6


def _url_password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return password or None


@lru_cache(maxsize=1)
def _known_secrets_cached(key: tuple[str, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for value in key:
        password = _url_password(value)
        if password:
            found.update({password, unquote(password)})
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET_LEN), key=len, reverse=True))


def known_secrets() -> tuple[str, ...]:
    """The passwords inside the configured service URLs (database, Redis, broker)."""
    urls = tuple(str(getattr(settings, name, "") or "") for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"))
    return _known_secrets_cached(urls)


def redact(text: str) -> str:
    """``text`` with every URL password and every known service password replaced by ``MASK``."""
    text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + MASK + "@", text)
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingExceptionReporter(ExceptionReporter):
    """Django's error report (debug page, error e-mails) with ``redact`` applied to the finished text."""

    def get_traceback_html(self) -> Any:  # noqa: ANN401 - SafeString
        return redact(str(super().get_traceback_html()))

    def get_traceback_text(self) -> Any:  # noqa: ANN401 - SafeString
        return redact(str(super().get_traceback_text()))


class RedactingFormatter(logging.Formatter):
    """The plain log format, tracebacks included, with ``redact`` applied to each formatted record."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per log line (``LOG_FORMAT=json``), with ``redact`` applied to the whole line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
