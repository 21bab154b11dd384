"""Check a freshly entered API key before it is stored (docs/protocol.md §3.5, §4.2, §7.1).

``GET /v3/account`` proves the key, secret and passphrase and reads the account. The REST account response does not
carry the key's scopes, so the permissions come from the Stream ``authenticate`` result, which echoes the granted
list. Only if the stream cannot be reached do we fall back to probing over REST:

* ``futures:isolated:read``: ``GET /v3/futures/isolated/trades/running`` (403 → not granted);
* ``futures:isolated:write``: ``POST /v3/futures/isolated/trade/cancel`` for the nil UUID, which no trade has:
  403 → not granted, 404/400 → granted (the scope check passed, the id did not). Nothing can be changed by it;
* withdrawal scopes cannot be probed without side effects, so a probe never reports them (``can_withdraw`` False,
  ``permissions_source == "probe"`` tells the form that this is unknown rather than absent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Literal, TypeVar

from websockets.exceptions import WebSocketException

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.exceptions import (
    InvalidOrderError,
    NetworkUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    TemporaryError,
)
from lnmarkets.networks import network_urls
from lnmarkets.ratelimit import RateLimiter
from lnmarkets.schemas import AuthenticateResult
from lnmarkets.stream import stream_authenticate

logger = logging.getLogger(__name__)

TRADE_SCOPE = "futures:isolated:write"
REQUIRED_SCOPES = ("account:read", "futures:isolated:read", TRADE_SCOPE)
NIL_UUID = "00000000-0000-0000-0000-000000000000"
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """What the key is and may do. ``missing`` lists the scopes of ``REQUIRED_SCOPES`` the key lacks."""

    permissions: tuple[str, ...]
    account_id: str
    username: str
    balance: int
    can_trade: bool
    can_withdraw: bool
    permissions_source: Literal["stream", "probe"]
    missing: tuple[str, ...]


def _run_coroutine(coro: Coroutine[object, object, R], timeout: float) -> R:
    """Run ``coro`` to completion from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=timeout)


def _probe_permissions(client: RestClient) -> tuple[str, ...]:
    granted = ["account:read"]
    try:
        client.isolated_trades_running_list(priority="low")
        granted.append("futures:isolated:read")
    except PermissionDeniedError:
        pass
    try:
        client.isolated_trade_cancel(NIL_UUID, priority="low")
        granted.append(TRADE_SCOPE)  # pragma: no cover - the nil UUID never exists
    except PermissionDeniedError:
        pass
    except (NotFoundError, InvalidOrderError):
        granted.append(TRADE_SCOPE)
    return tuple(granted)


def verify_credentials(
    network: str,
    credentials: Credentials,
    *,
    timeout: float = 10.0,
    rest_url: str | None = None,
    stream_url: str | None = None,
    rate_limiter: RateLimiter | None = None,
) -> VerificationResult:
    """Verify ``credentials`` on ``network`` (URLs from settings unless given).

    Raises ``AuthError`` for wrong credentials (``PermissionDeniedError`` if the key lacks ``account:read``),
    ``NetworkUnreachableError`` when the exchange cannot be reached or does not answer, ``TemporaryError`` for
    other transient failures. A key without ``futures:isolated:write`` is *not* an error: ``can_trade`` is False
    and ``missing`` names the scope.
    """
    urls = network_urls(network) if rest_url is None or stream_url is None else None
    provider = static_provider(credentials)
    client = RestClient(
        rest_url or (urls.rest if urls else ""),
        provider,
        timeout=timeout,
        rate_limiter=rate_limiter,
        max_retries=1,
    )
    try:
        try:
            account = client.account_get(priority="low")
        except NetworkUnreachableError:
            raise
        except TemporaryError as exc:
            if exc.status is None:  # no HTTP answer at all (read timeout, dropped connection)
                raise NetworkUnreachableError(f"exchange did not answer: {exc.message}", code=exc.code) from exc
            raise
        source: Literal["stream", "probe"] = "stream"
        try:
            auth: AuthenticateResult = _run_coroutine(
                stream_authenticate(stream_url or (urls.stream if urls else ""), provider, request_timeout=timeout),
                timeout=timeout * 3,
            )
            permissions = auth.permissions
        except (TemporaryError, OSError, TimeoutError, WebSocketException) as exc:
            logger.warning("stream unavailable for permission discovery (%s); probing over REST", type(exc).__name__)
            source = "probe"
            permissions = _probe_permissions(client)
    finally:
        client.close()
    missing = tuple(scope for scope in REQUIRED_SCOPES if scope not in permissions)
    return VerificationResult(
        permissions=permissions,
        account_id=account.id,
        username=account.username,
        balance=account.balance,
        can_trade=TRADE_SCOPE in permissions,
        can_withdraw=any(p.startswith("account:withdrawals:write") for p in permissions),
        permissions_source=source,
        missing=missing,
    )
