"""What the feed process runs, per network: the market feed, the tick runner (automations act on every tick), the
dashboards' market publisher, and the private trade streams of every enabled account (``ExchangeStreamManager``).
Started by ``run_automations`` (production) and by the embedded default (``config.embedded``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from django.conf import settings

from automations.runner import TickRunner
from automations.stream_manager import ExchangeStreamManager
from lnmarkets.feed import get_market_feed, stop_market_feeds
from realtime.candles import day_window
from realtime.market import MarketPublisher


def feed_process_start(networks: Iterable[str]) -> list[Callable[[], None]]:
    """Start everything for ``networks``; the stop functions, in start order (call them reversed)."""
    networks = tuple(networks)
    stops: list[Callable[[], None]] = [stop_market_feeds]
    for network in networks:
        feed = get_market_feed(network)
        # The 24 h figures start from the exchange's own minute candles (a true 24 h window, not "since start").
        for runner in (
            TickRunner(feed, network),
            MarketPublisher(feed, network, max_rate_hz=2, history=partial(day_window, network)),
        ):
            runner.start()
            stops.append(runner.stop)
    streams = ExchangeStreamManager(networks, connects_per_second=settings.LNMARKETS_STREAM_CONNECTS_PER_SECOND)
    streams.start()
    stops.append(streams.stop)
    return stops
