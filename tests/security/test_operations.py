"""/readyz and /metrics through Django, on whichever database, cache and broker the suite runs with (SQLite and
memory on the embedded default; PostgreSQL and Redis in CI's second run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import DatabaseError
from django.test import Client, override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from accounts.models import User
from automations.models import OrderIntent
from config import health
from config.metrics import SOCKETS_OPEN, count_tick
from realtime.market import store_market_state
from tests.realtime.conftest import market

pytestmark = pytest.mark.django_db


@pytest.fixture
def set_market() -> Any:  # noqa: ANN401
    def set_(**kwargs: Any) -> None:  # noqa: ANN401
        store_market_state(market(**kwargs))

    return set_


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    cache.delete(health.HEARTBEAT_KEY)


def _ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    assert response["Cache-Control"].startswith("max-age=0")
    return response.status_code, response.json()


def test_readyz_is_ready_with_a_database_broker_fresh_feed_and_a_heartbeat(
    alice: User, make_account: Any, set_market: Any
) -> None:  # noqa: ANN401
    make_account(alice, network="simulator")
    set_market(network="simulator", age_s=1)
    health.heartbeat_beat()
    status, body = _ready(Client())
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["feed"]["tick_age_s"]["simulator"] < 5
    assert body["checks"]["workers"]["heartbeat_age_s"] < 5


def test_readyz_is_503_without_a_worker_heartbeat(db: None) -> None:
    status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["workers"] == {"ok": False, "max_age_s": 90.0, "heartbeat_age_s": None}


def test_readyz_is_503_on_an_old_heartbeat(db: None) -> None:
    cache.set(health.HEARTBEAT_KEY, (timezone.now() - timedelta(minutes=5)).isoformat())
    status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["workers"]["heartbeat_age_s"] >= 299


def test_readyz_is_503_on_a_stale_feed(alice: User, make_account: Any, set_market: Any) -> None:  # noqa: ANN401
    make_account(alice, network="simulator")
    set_market(network="simulator", age_s=300)
    health.heartbeat_beat()
    status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["feed"]["ok"] is False


def test_readyz_is_503_with_the_broker_down(db: None) -> None:
    health.heartbeat_beat()
    with mock.patch("kombu.Connection.ensure_connection", side_effect=BrokerError("redis://:pw@x down")):
        status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["broker"] == {"ok": False, "error": "OperationalError"}
    assert "pw" not in str(body)


def test_readyz_is_503_with_the_database_down(db: None) -> None:
    health.heartbeat_beat()
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DatabaseError("down")):
        status, body = _ready(Client())
    assert status == 503
    assert body["checks"]["database"]["ok"] is False


def test_the_heartbeat_task_is_on_the_beat_schedule() -> None:
    from config.celery import app

    app.finalize()
    entry = app.conf.beat_schedule["worker-heartbeat"]
    assert entry["task"] == health.HEARTBEAT_TASK
    assert health.HEARTBEAT_TASK in app.tasks
    app.tasks[health.HEARTBEAT_TASK].apply()
    assert health.heartbeat_age_s() is not None


def _metrics(client: Client) -> str:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return response.content.decode()


def _value(text: str, prefix: str) -> float:
    line = next(x for x in text.splitlines() if x.startswith(prefix))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_report_ticks_intents_latency_sockets_and_queues(
    alice: User, make_account: Any, set_market: Any
) -> None:  # noqa: ANN401
    account = make_account(alice)
    set_market(network="simulator", age_s=2)
    before = _value(_metrics(Client()), 'axisor_market_ticks_total{network="simulator"}')
    count_tick("simulator")
    count_tick("simulator")
    now = timezone.now()
    OrderIntent.objects.create(account=account, action="open", state=OrderIntent.State.CREATED)
    done = OrderIntent.objects.create(account=account, action="close", state=OrderIntent.State.RECONCILED)
    OrderIntent.objects.filter(pk=done.pk).update(created_at=now - timedelta(seconds=2), finished_at=now)
    SOCKETS_OPEN.inc()
    try:
        text = _metrics(Client())
    finally:
        SOCKETS_OPEN.dec()
    assert _value(text, 'axisor_market_ticks_total{network="simulator"}') == before + 2
    assert 1 <= _value(text, 'axisor_market_tick_age_seconds{network="simulator"}') < 10
    assert _value(text, 'axisor_order_intents{state="created"}') == 1
    assert _value(text, 'axisor_order_intents{state="reconciled"}') == 1
    assert 1.9 <= _value(text, 'axisor_order_latency_seconds{quantile="0.5"}') <= 2.1
    assert _value(text, "axisor_websockets_open") >= 1
    assert _value(text, 'axisor_task_queue_depth{queue="protective"}') >= 0
    assert _value(text, "axisor_notification_queue_depth") >= 0
    assert _value(text, "axisor_broker_up") == 1


def test_metrics_are_refused_from_elsewhere_without_the_token(db: None) -> None:
    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.5").status_code == 403
    # through a proxy (X-Forwarded-For) even a loopback peer is "elsewhere"
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 403


@override_settings(METRICS_TOKEN="scrape-token-123")
def test_metrics_with_a_token_need_the_bearer_token(db: None) -> None:
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    ok = Client().get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer scrape-token-123")
    assert ok.status_code == 200
    assert "axisor_order_intents" in ok.content.decode()
