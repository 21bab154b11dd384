"""The eight Stream v1 JSON-RPC methods (§7.1) and their (invented, [U]) error codes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lnmarkets.simulator.auth import authenticate_stream
from lnmarkets.simulator.errors import ApiError
from lnmarkets.simulator.wire import ms

if TYPE_CHECKING:
    from lnmarkets.simulator.stream import Hub, StreamSocket

PAIR = "futures/inverse/btc_usd"
RESOLUTIONS = ("1m", "3m", "5m", "10m", "15m", "30m", "45m", "1h", "2h", "3h", "4h", "1d", "1w", "1month", "3months")
PUBLIC_TOPICS = frozenset(
    {f"{PAIR}/{name}" for name in ("ticker", "lastPrice", "index", "buckets", "funding")}
    | {f"{PAIR}/ohlc/{res}" for res in RESOLUTIONS}
    | {"announcements"}
)
PRIVATE_TOPICS: dict[str, str] = {
    f"{PAIR}/isolated/trades": "futures:isolated:read",
    f"{PAIR}/cross/orders": "futures:cross:read",
    f"{PAIR}/cross/position": "futures:cross:read",
    "wallet/deposit": "account:deposits:read",
    "wallet/withdrawal": "account:withdrawals:read",
}


class RpcError(Exception):
    def __init__(self, code: int, message: str, app_code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.app_code = app_code

    def as_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "data": {"code": self.app_code}}


def parse_request(text: str) -> tuple[Any, str, dict[str, Any]]:
    """(id, method, params) of a JSON-RPC 2.0 request."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise RpcError(-32700, "Parse error") from exc
    if not isinstance(message, dict):
        raise RpcError(-32600, "Invalid request")
    request_id = message.get("id")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        request_id = None
    method = message.get("method")
    params = message.get("params", {})
    if message.get("jsonrpc") != "2.0" or not isinstance(method, str) or request_id is None:
        raise RpcError(-32600, "Invalid request")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError(-32602, "params must be an object")
    return request_id, method, params


def _topics(params: dict[str, Any]) -> list[str]:
    topics = params.get("topics")
    if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
        raise RpcError(-32602, "topics must be a non-empty list of strings")
    return list(dict.fromkeys(topics))


def _subscribe(hub: Hub, sock: StreamSocket, params: dict[str, Any]) -> object:
    topics = _topics(params)
    for topic in topics:
        if topic in PUBLIC_TOPICS:
            continue
        scope = PRIVATE_TOPICS.get(topic)
        if scope is None:
            raise RpcError(-32602, f"Unknown topic: {topic}")
        if sock.api_key is None:
            raise RpcError(-32001, f"Authenticate before subscribing to {topic}", "UNAUTHORIZED")
        if scope not in sock.api_key.scopes:
            raise RpcError(-32003, f"This API key lacks the {scope} permission", "FORBIDDEN")
    hub.subscribe(sock, topics)
    return {"subscribed": topics}


def _authenticate(hub: Hub, sock: StreamSocket, params: dict[str, Any]) -> object:
    fields = ("key", "passphrase", "timestamp", "nonce", "signature")
    if set(params) != set(fields):
        raise RpcError(-32602, "authenticate needs key, passphrase, timestamp, nonce and signature")
    timestamp = params["timestamp"]
    texts = [params[name] for name in ("key", "passphrase", "nonce", "signature")]
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not all(isinstance(t, str) for t in texts):
        raise RpcError(-32602, "timestamp must be an integer (ms) and the other params strings")
    exchange = hub.exchange
    try:
        api_key = authenticate_stream(
            exchange.keys,
            params["key"],
            params["passphrase"],
            timestamp,
            params["nonce"],
            params["signature"],
            ms(exchange.clock()),
            hub.config.timestamp_window_ms,
        )
    except ApiError as error:
        raise RpcError(-32001, error.message, error.code) from error
    if sock.api_key is not None and sock.api_key.account_id != api_key.account_id:
        hub.unsubscribe(sock, [t for t in sock.topics if t in PRIVATE_TOPICS])
    sock.api_key = api_key
    return {"authenticated": True, "permissions": list(api_key.scopes)}


def dispatch(hub: Hub, sock: StreamSocket, method: str, params: dict[str, Any]) -> object:
    if method == "hello":
        return {"version": "1.0.0"}
    if method == "ping":
        return "pong"
    if method == "time":
        return {"time": ms(hub.exchange.clock())}
    if method == "authenticate":
        return _authenticate(hub, sock, params)
    if method == "whoami":
        key = sock.api_key
        if key is None:
            return {"apiKey": None, "userId": None, "permissions": []}
        return {"apiKey": key.key, "userId": key.account_id, "permissions": list(key.scopes)}
    if method == "subscribe":
        return _subscribe(hub, sock, params)
    if method == "unsubscribe":
        return {"unsubscribed": hub.unsubscribe(sock, _topics(params))}
    if method == "unsubscribeAll":
        return {"unsubscribed": hub.unsubscribe(sock, sorted(sock.topics))}
    raise RpcError(-32601, f"Method not found: {method}", "NOT_FOUND")
