"""Prometheus metrics (prometheus-client), served at /metrics.

Two kinds:

* Read at scrape time from shared state, so every process reports the same numbers: market ticks and tick age per
  network (cache), order intents by state and order latency (database), task queue depth (broker), notification
  queue depth (channel-layer backlog), worker heartbeat age.
* Counted in the process: open dashboard WebSockets (``SOCKETS_OPEN``). With several Daphne processes, set
  ``PROMETHEUS_MULTIPROC_DIR`` to a shared empty folder for all of them (prometheus-client's multi-process mode):
  /metrics then adds up the live processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError
from django.db.models import Count
from django.utils import timezone
from kombu.exceptions import ChannelError
from kombu.exceptions import OperationalError as BrokerError
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

logger = logging.getLogger(__name__)

SOCKETS_OPEN = Gauge("axisor_websockets_open", "Open dashboard WebSockets.", multiprocess_mode="livesum")
SHED_TOTAL = Counter("axisor_shed", "Requests and socket handshakes shed on purpose (realtime.admission).", ["kind"])
LATENCY_WINDOW = timedelta(minutes=15)
LATENCY_QUANTILES = (0.5, 0.9, 0.99, 1.0)
LATENCY_SAMPLE = 5000
QUEUES = ("protective", "celery")
_TICKS_KEY = "ops:ticks:{network}"


def count_tick(network: str) -> None:
    """One more market tick published for ``network`` (shared through the cache by every process)."""
    key = _TICKS_KEY.format(network=network)
    if not cache.add(key, 1, timeout=None):
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.add(key, 1, timeout=None)


def _quantile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _networks() -> list[str]:
    from accounts.models import Network

    return [str(n) for n in Network.values]


def _market_metrics() -> Iterator[Metric]:
    from realtime.market import market_state

    ticks = CounterMetricFamily("axisor_market_ticks", "Market ticks published to dashboards.", labels=["network"])
    age = GaugeMetricFamily("axisor_market_tick_age_seconds", "Age of the newest market tick.", labels=["network"])
    for network in _networks():
        count = cache.get(_TICKS_KEY.format(network=network))
        ticks.add_metric([network], float(count or 0))
        age_ms = market_state(network)["age_ms"]
        if age_ms is not None:
            age.add_metric([network], age_ms / 1000)
    yield ticks
    yield age


def _intent_metrics() -> Iterator[Metric]:
    from automations.models import OrderIntent

    by_state = GaugeMetricFamily("axisor_order_intents", "Order intents by state.", labels=["state"])
    counts = dict(OrderIntent.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    for state in OrderIntent.State.values:
        by_state.add_metric([state], float(counts.get(state, 0)))
    yield by_state
    since = timezone.now() - LATENCY_WINDOW
    rows = OrderIntent.objects.filter(finished_at__gte=since).order_by("-finished_at")[:LATENCY_SAMPLE]
    latencies = sorted(
        (finished - created).total_seconds()
        for created, finished in rows.values_list("created_at", "finished_at")
        if finished is not None
    )
    latency = GaugeMetricFamily(
        "axisor_order_latency_seconds",
        "Decision to exchange outcome of the order intents finished in the last 15 minutes, by quantile.",
        labels=["quantile"],
    )
    for q in LATENCY_QUANTILES if latencies else ():
        latency.add_metric([str(q)], _quantile(latencies, q))
    yield latency
    yield GaugeMetricFamily(
        "axisor_order_latency_window_count", "Order intents finished in the last 15 minutes.", value=len(latencies)
    )


def _queue_depth(name: str) -> int:
    from config.celery import app

    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        channel: Any = conn.default_channel  # kombu's virtual channel (memory:// or Redis)
        try:
            declared = channel.queue_declare(queue=name, passive=True)
        except ChannelError:  # a queue nobody declared yet holds nothing
            return 0
        return int(declared.message_count)


def _broker_metrics() -> Iterator[Metric]:
    depth = GaugeMetricFamily("axisor_task_queue_depth", "Celery tasks waiting in each queue.", labels=["queue"])
    up = 1.0
    for queue in QUEUES:
        try:
            depth.add_metric([queue], float(_queue_depth(queue)))
        except (BrokerError, OSError) as exc:
            logger.warning("metrics: broker unavailable (%s)", type(exc).__name__)
            up = 0.0
            break
    yield depth
    yield GaugeMetricFamily("axisor_broker_up", "1 when the Celery broker answered.", value=up)


def notification_queue_depth() -> int:
    """Realtime notifications waiting in the channel layer for a socket to take them."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return sum(queue.qsize() for queue in layer.channels.values())
    return _redis_layer_depth(layer)


def _redis_layer_depth(layer: Any) -> int:  # noqa: ANN401 - channels_redis is untyped
    import redis

    hosts = getattr(layer, "hosts", None) or []
    prefix = getattr(layer, "prefix", "asgi")
    if not hosts:
        return 0
    client = redis.Redis.from_url(hosts[0]["address"]) if "address" in hosts[0] else redis.Redis(**hosts[0])
    try:
        total = 0
        for i, key in enumerate(client.scan_iter(match=f"{prefix}*", count=500, _type="zset")):
            if i >= 10_000:  # noqa: PLR2004 - a bound on the scan, not a business rule
                break
            total += int(client.zcard(key))
        return total
    finally:
        client.close()


def _realtime_metrics() -> Iterator[Metric]:
    from config import health

    try:
        depth = float(notification_queue_depth())
    except OSError as exc:
        logger.warning("metrics: channel layer unavailable (%s)", type(exc).__name__)
        depth = float("nan")
    yield GaugeMetricFamily(
        "axisor_notification_queue_depth", "Realtime notifications waiting in the channel layer.", value=depth
    )
    age = health.heartbeat_age_s()
    if age is not None:
        yield GaugeMetricFamily("axisor_worker_heartbeat_age_seconds", "Age of the last worker heartbeat.", value=age)


class AxisorCollector(Collector):
    """The scrape-time metrics of the module docstring."""

    def collect(self) -> Iterator[Metric]:
        yield from _market_metrics()
        try:
            yield from _intent_metrics()
        except DatabaseError as exc:
            logger.warning("metrics: database unavailable (%s)", type(exc).__name__)
        yield from _broker_metrics()
        yield from _realtime_metrics()


_SCRAPE_TIME = CollectorRegistry()
_SCRAPE_TIME.register(AxisorCollector())


def render() -> bytes:
    """The metrics in Prometheus' text format: this process's own (or every live process's, in multi-process
    mode) followed by the scrape-time ones."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
        return generate_latest(processes) + generate_latest(_SCRAPE_TIME)
    return generate_latest(REGISTRY) + generate_latest(_SCRAPE_TIME)
