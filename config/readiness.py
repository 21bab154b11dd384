"""Readiness (/readyz): is this deployment able to do its work right now?

Four checks, each ``{"ok": bool, ...}`` with numbers only (never an exception's text, which may hold a URL):

* ``database``: a ``SELECT 1`` on the default connection;
* ``broker``: a connection to Celery's broker (Redis in production; the in-process transport is always up);
* ``feed``: the age of the newest market tick of each watched network (``READYZ_FEED_NETWORKS``, or every network an
  enabled account uses) is at most ``READYZ_MAX_TICK_AGE_S``; with no account there is nothing to watch;
* ``workers``: the worker heartbeat (``config.health``) is at most ``READYZ_MAX_HEARTBEAT_AGE_S`` old.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from kombu.exceptions import OperationalError as BrokerError

from config import health
from realtime.market import market_state

logger = logging.getLogger(__name__)

Check = dict[str, Any]
BROKER_TIMEOUT_S = 2


def check_database() -> Check:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readiness: database unavailable (%s)", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_broker() -> Check:
    from config.celery import app

    started = time.monotonic()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
    except (BrokerError, OSError) as exc:
        logger.warning("readiness: broker unavailable (%s)", type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def watched_networks() -> list[str]:
    configured: list[str] = list(settings.READYZ_FEED_NETWORKS)
    if configured:
        return configured
    from accounts.models import ExchangeAccount

    return sorted(set(ExchangeAccount.objects.filter(is_enabled=True).values_list("network", flat=True)))


def check_feed() -> Check:
    limit = float(settings.READYZ_MAX_TICK_AGE_S)
    try:
        networks = watched_networks()
    except DatabaseError as exc:
        return {"ok": False, "error": type(exc).__name__}
    ages: dict[str, float | None] = {}
    for network in networks:
        age_ms = market_state(network)["age_ms"]
        ages[network] = None if age_ms is None else round(age_ms / 1000, 1)
    ok = all(age is not None and age <= limit for age in ages.values())
    return {"ok": ok, "max_age_s": limit, "tick_age_s": ages}


def check_workers() -> Check:
    limit = float(settings.READYZ_MAX_HEARTBEAT_AGE_S)
    age = health.heartbeat_age_s()
    return {
        "ok": age is not None and age <= limit,
        "max_age_s": limit,
        "heartbeat_age_s": None if age is None else round(age, 1),
    }


def readiness() -> tuple[bool, dict[str, Check]]:
    """Run every check; ready when all pass."""
    checks = {
        "database": check_database(),
        "broker": check_broker(),
        "feed": check_feed(),
        "workers": check_workers(),
    }
    return all(c["ok"] for c in checks.values()), checks
