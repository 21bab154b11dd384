"""The shared server state: one per running simulator, used by REST, Stream and control on a single loop."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.faults import Faults
from lnmarkets.simulator.ratelimit import RateLimiter
from lnmarkets.simulator.stream import Hub

TRADE_PATH = "/v3/futures/isolated/trade"
LOG_LIMIT = 100_000


@dataclass
class RequestStats:
    """What control reports about received requests: clientId counts and per-key arrival logs."""

    client_ids: dict[str, int] = field(default_factory=dict)
    trade_requests: dict[str, int] = field(default_factory=dict)
    log: dict[str, deque[tuple[float, int]]] = field(default_factory=dict)

    def count_client_id(self, body: str) -> None:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return  # malformed: the request is still answered (400) by the REST front
        client_id = data.get("clientId") if isinstance(data, dict) else None
        if isinstance(client_id, str):
            self.client_ids[client_id] = self.client_ids.get(client_id, 0) + 1

    def count_trade_request(self, path: str, body: str) -> None:
        """Count a mutating request on an existing trade (close, add-margin, stoploss…) by path and trade id."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return
        trade_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(trade_id, str):
            name = f"{path}#{trade_id}"
            self.trade_requests[name] = self.trade_requests.get(name, 0) + 1

    def log_request(self, key: str, arrival: float, status: int) -> None:
        self.log.setdefault(key, deque(maxlen=LOG_LIMIT)).append((arrival, status))

    def clear(self) -> None:
        self.client_ids.clear()
        self.trade_requests.clear()
        self.log.clear()


class SimContext:
    def __init__(self, config: SimulatorConfig, exchange: Exchange) -> None:
        self.config = config
        self.exchange = exchange
        self.faults = Faults()
        self.limiter = RateLimiter(config.rate_limits, config.auth_rps, config.public_rps)
        self.stats = RequestStats()
        self.hub = Hub(exchange, config)
        self.frozen = not config.auto_tick
