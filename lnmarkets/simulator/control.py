"""The control API under ``/_sim/`` (loopback only, ``Authorization: Bearer <token>``; 404 when no token is set)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web

from lnmarkets.maths import is_on_tick
from lnmarkets.simulator.context import SimContext
from lnmarkets.simulator.errors import ApiError, bad_request
from lnmarkets.simulator.rest import error_response, json_response
from lnmarkets.simulator.trades import Account, ApiKey
from lnmarkets.simulator.validation import as_decimal, as_int, as_str, body_object
from lnmarkets.simulator.wire import loads

LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
MAX_STEPS = 100_000
Route = Callable[[web.Request, dict[str, Any], re.Match[str]], Awaitable[object]]


def sim_account(account: Account, key: ApiKey) -> dict[str, object]:
    return {
        "id": account.id,
        "username": account.username,
        "key": key.key,
        "secret": key.secret,
        "passphrase": key.passphrase,
        "scopes": list(key.scopes),
        "balance": account.balance,
    }


def _scopes(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise bad_request("scopes must be a list of strings")
    return tuple(value)


def _opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return None if value is None else as_str(value, name, max_length=200)


def _price(value: Any, name: str) -> Decimal:
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except ArithmeticError as exc:
            raise bad_request(f"{name} must be a number") from exc
    price = as_decimal(value, name)
    if price <= 0 or not is_on_tick(price):
        raise bad_request(f"{name} must be > 0 and a multiple of 0.5")
    return price


class ControlFront:
    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.routes: list[tuple[str, re.Pattern[str], Route]] = [
            ("POST", re.compile(r"accounts"), self.create_account),
            ("POST", re.compile(r"accounts/(?P<id>[^/]+)/keys"), self.add_key),
            ("POST", re.compile(r"accounts/(?P<id>[^/]+)/balance"), self.set_balance),
            ("POST", re.compile(r"accounts/(?P<id>[^/]+)/reset"), self.reset_account),
            ("GET", re.compile(r"keys/(?P<key>[^/]+)"), self.key_account),
            ("POST", re.compile(r"price"), self.set_price),
            ("POST", re.compile(r"step"), self.step),
            ("POST", re.compile(r"freeze"), self.freeze),
            ("GET", re.compile(r"state"), self.state),
            ("POST", re.compile(r"faults"), self.add_fault),
            ("DELETE", re.compile(r"faults"), self.clear_faults),
            ("GET", re.compile(r"requests"), self.client_id_count),
            ("GET", re.compile(r"requests/log"), self.request_log),
            ("POST", re.compile(r"ratelimits"), self.rate_limits),
            ("POST", re.compile(r"funding"), self.funding),
            ("POST", re.compile(r"reset"), self.reset),
        ]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        token = self.ctx.config.control_token
        if not token:
            return error_response(ApiError("not_found", "The control API is disabled"))
        if request.remote not in LOOPBACK:
            return json_response({"code": "FORBIDDEN", "message": "Loopback only"}, 403)
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return json_response({"code": "UNAUTHORIZED", "message": "Missing or wrong control token"}, 401)
        tail = request.match_info.get("tail", "")
        for method, pattern, route in self.routes:
            match = pattern.fullmatch(tail)
            if match and method == request.method:
                try:
                    text = await request.text() if request.body_exists else ""
                    body = loads(text) if text else {}
                    return json_response(await route(request, body, match))
                except ApiError as error:
                    return error_response(error)
        return error_response(ApiError("not_found", f"No control route {request.method} /_sim/{tail}"))

    # -- accounts ------------------------------------------------------------------------------------------------
    async def create_account(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"balance", "scopes", "username", "key", "secret", "passphrase"}, set())
        account, key = self.ctx.exchange.create_account(
            balance=as_int(body.get("balance", 1_000_000), "balance", minimum=0, maximum=10**15),
            scopes=_scopes(body.get("scopes")),
            username=_opt_str(body, "username"),
            key=_opt_str(body, "key"),
            secret=_opt_str(body, "secret"),
            passphrase=_opt_str(body, "passphrase"),
        )
        return sim_account(account, key)

    async def add_key(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"scopes"}, set())
        exchange = self.ctx.exchange
        key = exchange.add_key(match["id"], _scopes(body.get("scopes")))
        return sim_account(exchange.account(match["id"]), key)

    async def set_balance(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"balance"}, {"balance"})
        balance = as_int(body["balance"], "balance", minimum=0, maximum=10**15)
        return self.ctx.exchange.set_balance(match["id"], balance).as_json()

    async def reset_account(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        """Start one paper account again: close its running trades at market, cancel its open orders, then set its
        balance (the other accounts and the market are untouched)."""
        body = body_object(body, {"balance"}, {"balance"})
        balance = as_int(body["balance"], "balance", minimum=0, maximum=10**15)
        exchange = self.ctx.exchange
        account = exchange.account(match["id"])
        closed = [exchange.close_trade(account.id, t.id).id for t in exchange.trades_of(account.id, "running")]
        canceled = [t.id for t in exchange.cancel_all(account.id)]
        exchange.set_balance(account.id, balance)
        return {**account.as_json(), "closed": closed, "canceled": canceled}

    async def key_account(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        """The account an API key belongs to (404 for an unknown key), without the key's secret parts."""
        body_object(body, set(), set())
        exchange = self.ctx.exchange
        key = exchange.keys.get(match["key"])
        if key is None:
            raise ApiError("not_found", "Key not found")
        return exchange.account(key.account_id).as_json()

    # -- prices --------------------------------------------------------------------------------------------------
    async def set_price(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"price", "index"}, {"price"})
        price = _price(body["price"], "price")
        index = _price(body["index"], "index") if body.get("index") is not None else None
        self.ctx.exchange.tick(price, index)
        return self.ctx.exchange.ticker()

    async def step(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"n"}, set())
        for _ in range(as_int(body.get("n", 1), "n", minimum=1, maximum=MAX_STEPS)):
            self.ctx.exchange.tick()
        return self.ctx.exchange.ticker()

    async def freeze(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"frozen"}, set())
        frozen = body.get("frozen", True)
        if not isinstance(frozen, bool):
            raise bad_request("frozen must be a boolean")
        self.ctx.frozen = frozen
        return {"frozen": frozen}

    async def funding(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"rate"}, set())
        rate = as_decimal(body["rate"], "rate") if body.get("rate") is not None else None
        if rate is not None and abs(rate) > 1:
            raise bad_request("rate must be between -1 and 1")
        return self.ctx.exchange.settle_funding(rate)

    # -- state ---------------------------------------------------------------------------------------------------
    async def state(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body_object(body, set(), set())
        ctx = self.ctx
        exchange = ctx.exchange
        accounts = []
        for account in exchange.accounts.values():
            accounts.append(
                {
                    **account.as_json(),
                    "locked": exchange.locked(account),
                    "ledger": {
                        "deposited": account.deposited,
                        "feesPaid": account.fees_paid,
                        "fundingPaid": account.funding_paid,
                        "realisedPl": account.realised_pl,
                        "absorbed": account.absorbed,
                    },
                    "keys": [
                        {"key": k.key, "scopes": list(k.scopes)}
                        for k in exchange.keys.values()
                        if k.account_id == account.id
                    ],
                    "trades": [exchange.trade_json(exchange.trades[t]) for t in account.trade_ids],
                }
            )
        return {
            "ticker": exchange.ticker(),
            "frozen": ctx.frozen,
            "accounts": accounts,
            "counters": {**exchange.counters, "streamSockets": len(ctx.hub.sockets), "streamPushes": ctx.hub.pushed},
            "faults": ctx.faults.as_json(),
            "rateLimits": self._limits(),
        }

    def _limits(self) -> dict[str, object]:
        limiter = self.ctx.limiter
        return {"enabled": limiter.enabled, "authRps": limiter.auth_rps, "publicRps": limiter.public_rps}

    async def rate_limits(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body = body_object(body, {"enabled", "authRps", "publicRps"}, {"enabled"})
        if not isinstance(body["enabled"], bool):
            raise bad_request("enabled must be a boolean")
        self.ctx.limiter.configure(
            body["enabled"],
            as_int(body.get("authRps", 5), "authRps", minimum=1, maximum=100_000),
            as_int(body.get("publicRps", 1), "publicRps", minimum=1, maximum=100_000),
        )
        return self._limits()

    async def client_id_count(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body_object(body, set(), set())
        trade_id = request.query.get("tradeId")
        if trade_id is not None:
            suffix = f"#{trade_id}"
            counts = {k[: -len(suffix)]: n for k, n in self.ctx.stats.trade_requests.items() if k.endswith(suffix)}
            return {"tradeId": trade_id, "counts": counts}
        client_id = request.query.get("clientId")
        if client_id is None:
            raise bad_request("clientId or tradeId is required")
        return {"clientId": client_id, "count": self.ctx.stats.client_ids.get(client_id, 0)}

    async def request_log(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body_object(body, set(), set())
        key = request.query.get("key")
        if key is None:
            raise bad_request("key is required")
        entries = list(self.ctx.stats.log.get(key, ()))
        return {"key": key, "times": [t for t, _ in entries], "statuses": [s for _, s in entries]}

    # -- faults --------------------------------------------------------------------------------------------------
    async def add_fault(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        allowed = {"kind", "method", "path", "count", "seconds", "status", "retryAfter"}
        body = body_object(body, allowed, {"kind"})
        seconds = as_decimal(body["seconds"], "seconds") if body.get("seconds") is not None else None
        fault = self.ctx.faults.add(
            as_str(body["kind"], "kind"),
            method=_opt_str(body, "method"),
            path=_opt_str(body, "path"),
            count=as_int(body["count"], "count") if body.get("count") is not None else None,
            seconds=seconds,
            status=as_int(body["status"], "status") if body.get("status") is not None else None,
            retry_after=as_int(body["retryAfter"], "retryAfter", minimum=0)
            if body.get("retryAfter") is not None
            else None,
        )
        hub = self.ctx.hub
        if fault.kind == "stream_drop":
            await hub.drop_all(fault.seconds)
        elif fault.kind == "stream_silence":
            hub.silent_until = fault.until
        elif fault.kind == "stale_ticker":
            self.ctx.exchange.make_ticker_stale(fault.seconds)
        return {"id": fault.id}

    async def clear_faults(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body_object(body, set(), set())
        self.ctx.hub.silent_until = 0.0
        self.ctx.hub.refuse_until = 0.0
        self.ctx.exchange.make_ticker_stale(0)
        return {"cleared": self.ctx.faults.clear()}

    async def reset(self, request: web.Request, body: dict[str, Any], match: re.Match[str]) -> object:
        body_object(body, set(), set())
        ctx = self.ctx
        ctx.exchange.reset()
        ctx.faults.clear()
        ctx.stats.clear()
        ctx.limiter.windows.clear()
        ctx.hub.silent_until = 0.0
        ctx.hub.refuse_until = 0.0
        ctx.exchange.make_ticker_stale(0)
        return {"reset": True}
