"""LN Markets REST v3 client: signing, timeouts, rate limiting, bounded retries, typed responses (docs/protocol.md
§2–§5, §8; docs/reliability.md §1).

Contract of every call:

* The request text is built once (``?query`` via ``signing.encode_query``, compact JSON via ``encode_request_body``),
  put verbatim in the URL/body and signed as is; the full URL is built here and handed to ``urllib3`` as is, which
  sends it unchanged (it only percent-encodes characters that are invalid in a URL, and the encoders never emit any).
* Credentials come from the ``CredentialsProvider`` at signing time, once per attempt; the client keeps only
  ``sha256(key)[:16]`` for its rate-limit bucket. Nothing secret is logged or put in an error message.
* Every HTTP call has a ``(connect, read)`` timeout. The transport is one ``urllib3.PoolManager`` per client (a
  ``ProxyManager`` when the environment names a proxy for the base URL), TLS verified against ``certifi``'s bundle;
  ``urllib3`` itself never retries and never follows redirects: this client decides.
* Only GETs are retried: on 429 (after ``Retry-After``), 502, 503, 504 and connect-phase errors, at most
  ``max_retries`` times, with full-jitter exponential backoff (1 s → 8 s), re-signed each attempt. A GET read timeout
  is not retried (it becomes ``TemporaryError``) so a stuck exchange does not multiply the caller's wait.
* POST/PUT/DELETE are never re-sent. A read timeout, a dropped connection after sending, 500/502/504 or an
  unparseable 2xx body raise ``AmbiguousOutcomeError`` (reconcile with ``find_trade_by_client_id``). 429 raises
  ``RateLimitedError``, 503 and connect-phase errors ``TemporaryError``/``NetworkUnreachableError``: the exchange
  provably did not process them, so the caller may decide to send again.
* ``send_deadline(not_after)`` bounds when a mutating request may be signed: the timestamp is read once, checked
  against the deadline and then signed, so every request sent inside the block carries ``lnm-access-timestamp`` ≤
  ``not_after`` (the fence of ``docs/exactly-once.md``); past it, ``SendDeadlineError`` and nothing is sent.
* Bodies are parsed with ``Decimal`` for numbers into ``schemas`` models; mismatches raise ``ResponseFormatError``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import random
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

import urllib3
from pydantic import BaseModel
from urllib3.exceptions import ConnectTimeoutError, HTTPError, MaxRetryError, ReadTimeoutError
from urllib3.util import make_headers, parse_url

from lnmarkets import signing
from lnmarkets.credentials import Credentials, CredentialsProvider, key_fingerprint
from lnmarkets.exceptions import (
    AmbiguousOutcomeError,
    AuthError,
    InsufficientFundsError,
    InvalidOrderError,
    LNMarketsError,
    NetworkUnreachableError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    SendDeadlineError,
    TemporaryError,
)
from lnmarkets.ratelimit import Priority, RateLimiter, auth_bucket, default_rate_limiter, public_bucket
from lnmarkets.schemas import (
    Account,
    Candle,
    FundingFee,
    JSONValue,
    OrderType,
    Page,
    ServerTime,
    Side,
    Ticker,
    Trade,
    decimal_text,
    parse_json,
    parse_model,
    parse_model_list,
    parse_page,
)

logger = logging.getLogger(__name__)

Method = Literal["GET", "POST", "PUT", "DELETE"]
BodyValue = str | int | Decimal | bool | None
QueryValue = str | int | bool | None
StoplossMode = Literal["fixed", "trailing"]
M = TypeVar("M", bound=BaseModel)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "axisor-lnmarkets/1"
POOL_MAXSIZE = 10  # idle connections kept per origin; more concurrent calls open extra ones (block=False)
# What requests sent with every call besides our headers (gzip/deflate answers are decoded by urllib3).
TRANSPORT_HEADERS = {"Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"}
MAX_CLIENT_ID = 64
TICK = Decimal("0.5")
_INSUFFICIENT_CODES = frozenset({"INSUFFICIENT_FUNDS", "INSUFFICIENT_BALANCE", "NOT_ENOUGH_BALANCE"})


_send_deadline_ms: ContextVar[int | None] = ContextVar("lnmarkets_send_deadline_ms", default=None)


@contextmanager
def send_deadline(not_after: datetime) -> Iterator[None]:
    """Within the block, a mutating request whose signing timestamp would be later than ``not_after`` is not sent
    (``SendDeadlineError``). The deadline is per context (thread or task), not per client."""
    if not_after.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; pass an aware datetime")
    token = _send_deadline_ms.set(int(not_after.timestamp() * 1000))
    try:
        yield
    finally:
        _send_deadline_ms.reset(token)


def encode_request_body(body: Mapping[str, BodyValue]) -> str:
    """Compact JSON of a flat body, ``None`` dropped, ``Decimal`` written as a JSON number from its decimal text
    (``100000.5``), never through ``float``. Identical to ``signing.encode_body`` when no fractional Decimal is
    present (§3.2: the text sent is the text signed)."""
    clean = {k: v for k, v in body.items() if v is not None}
    if not any(isinstance(v, Decimal) for v in clean.values()):
        return signing.encode_body(clean)
    parts = []
    for key, value in clean.items():
        text = decimal_text(value) if isinstance(value, Decimal) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{json.dumps(key, ensure_ascii=False)}:{text}")
    return "{" + ",".join(parts) + "}"


def iso_ms(value: datetime) -> str:
    """``2025-01-01T00:00:00.000Z`` for an aware datetime (the query format of §2)."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; pass an aware datetime")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _retry_after_seconds(header: str | None, default: float = 1.0) -> float:
    if not header:
        return default
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _cause(exc: Exception) -> BaseException | None:
    """The error itself, or the one a ``MaxRetryError`` wraps (urllib3 raises it only when it was asked to retry)."""
    return exc.reason if isinstance(exc, MaxRetryError) else exc


def _is_connect_phase(exc: Exception) -> bool:
    """True when the request provably never reached the server: the connection could not be made (connect timeout,
    refused, DNS: ``ConnectTimeoutError`` and its subclasses ``NewConnectionError``/``NameResolutionError``). Anything
    else (a reused connection found closed, a dropped connection, TLS or proxy errors) may have been sent."""
    return isinstance(_cause(exc), ConnectTimeoutError)


def _is_read_timeout(exc: Exception) -> bool:
    return isinstance(_cause(exc), ReadTimeoutError)


def _error_fields(text: str) -> tuple[str | None, str]:
    """(exchange code, exchange message) from an error body ``{"code", "message"}``; tolerant of anything."""
    try:
        data = parse_json(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = data.get("code")
        message = data.get("message")
        return (code if isinstance(code, str) else None, message[:200] if isinstance(message, str) else "")
    return None, ""


def _check_price(name: str, value: Decimal | None) -> None:
    if value is None:
        return
    if not value.is_finite() or value <= 0 or value % TICK != 0:
        raise InvalidOrderError(f"{name} must be a positive multiple of 0.5", code="client_validation")


class RestClient:
    """Synchronous REST v3 client. Thread-safe for concurrent calls (one ``urllib3.PoolManager``; no per-call state).

    ``base_url`` ends with ``/v3`` (``settings.LNMARKETS_URLS[network]["rest"]``). ``credentials`` may be ``None``
    for public calls only. ``rate_limiter=None`` uses ``default_rate_limiter()`` (Redis when configured).
    ``key_id`` overrides the rate-limit identity of the key (default ``sha256(key)[:16]``, computed on first use).
    ``pool`` replaces the transport (tests script one); by default ``_new_pool(base_url)``.
    """

    def __init__(
        self,
        base_url: str,
        credentials: CredentialsProvider | None = None,
        *,
        timeout: float = 10.0,
        pool: urllib3.PoolManager | None = None,
        rate_limiter: RateLimiter | None = None,
        max_retries: int = 3,
        key_id: str | None = None,
        connect_timeout: float | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        split = urlsplit(base_url.rstrip("/"))
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ValueError("base_url must be an absolute http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._origin = f"{split.scheme}://{split.netloc}"
        self._path_prefix = split.path
        self._host = split.netloc
        self._credentials = credentials
        self.timeout = timeout
        self._connect_timeout = min(timeout, 5.0) if connect_timeout is None else connect_timeout
        self._pool = pool if pool is not None else _new_pool(self.base_url)
        self._limiter = rate_limiter if rate_limiter is not None else default_rate_limiter()
        self.max_retries = max_retries
        self._key_id = key_id
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep

    # --- transport -------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections (the client stays usable: the next call opens new ones)."""
        self._pool.clear()

    def _bucket(self, auth: bool) -> str:
        if not auth:
            return public_bucket(self._host)
        if self._key_id is None:
            self._key_id = key_fingerprint(self._provide().key)
        return auth_bucket(self._key_id)

    def _provide(self) -> Credentials:
        if self._credentials is None:
            raise AuthError("this call needs credentials; the client has none", code="no_credentials")
        return self._credentials()

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self._backoff_cap, self._backoff_base * (2**attempt)))  # noqa: S311

    def _headers(self, method: Method, path: str, data: str, auth: bool, has_body: bool) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **TRANSPORT_HEADERS}
        if has_body:
            headers["Content-Type"] = "application/json"
        elif method != "GET":
            headers["Content-Length"] = "0"  # as requests sent it (urllib3 would omit it on a DELETE)
        if auth:
            creds = self._provide()
            now_ms = time.time_ns() // 1_000_000
            deadline = _send_deadline_ms.get()
            if method != "GET" and deadline is not None and now_ms > deadline:
                raise SendDeadlineError(
                    f"{method} {path}: not sent, its send deadline passed {now_ms - deadline} ms ago",
                    code="send_deadline",
                )
            timestamp = str(now_ms)
            headers["lnm-access-key"] = creds.key
            headers["lnm-access-passphrase"] = creds.passphrase
            headers["lnm-access-timestamp"] = timestamp
            headers["lnm-access-signature"] = signing.rest_signature(creds.secret, timestamp, method, path, data)
        return headers

    def _request(  # noqa: C901 - one linear decision table for the retry policy
        self,
        method: Method,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        body: Mapping[str, BodyValue] | None = None,
        auth: bool = True,
        priority: Priority = "normal",
        client_id: str | None = None,
        trade_id: str | None = None,
    ) -> tuple[int, str]:
        """Send one logical request; return ``(status, body text)`` of a 2xx answer or raise a typed error."""
        query_text = signing.encode_query(query or {})
        body_text = encode_request_body(body) if body is not None else None
        sign_path = f"{self._path_prefix}{path}"
        url = f"{self._origin}{sign_path}{query_text}"
        data = body_text if body_text is not None else query_text
        what = f"{method} {sign_path}"
        retryable = method == "GET"
        bucket = self._bucket(auth)
        attempts = self.max_retries + 1 if retryable else 1
        last_error: LNMarketsError | None = None
        for attempt in range(attempts):
            if attempt:
                logger.info("retrying %s (attempt %d/%d) after %s", what, attempt + 1, attempts, last_error)
            self._limiter.acquire(bucket, priority=priority, timeout=max(self.timeout, 1.0))
            headers = self._headers(method, sign_path, data, auth, body_text is not None)
            started = time.monotonic()
            try:
                response = self._pool.urlopen(
                    method,
                    url,
                    body=body_text.encode("utf-8") if body_text is not None else None,
                    headers=headers,
                    timeout=urllib3.Timeout(connect=self._connect_timeout, read=self.timeout),
                    retries=False,
                    redirect=False,
                    preload_content=True,
                )
            except (HTTPError, OSError) as exc:
                error = self._transport_error(exc, what, retryable, client_id, trade_id)
                if retryable and attempt + 1 < attempts and _is_connect_phase(exc):
                    last_error = error
                    self._sleep(self._backoff(attempt))
                    continue
                raise error from exc
            status = response.status
            text = response.data.decode("utf-8", errors="replace")
            logger.debug("%s -> %d in %.1f ms", what, status, (time.monotonic() - started) * 1000)
            if 200 <= status < 300:
                return status, text
            error = self._status_error(status, text, what, response.headers.get("Retry-After"), client_id, trade_id)
            if isinstance(error, RateLimitedError):
                self._limiter.pause(bucket, error.retry_after)
            if retryable and status in RETRY_STATUSES and attempt + 1 < attempts:
                last_error = error
                wait = self._backoff(attempt)
                if isinstance(error, RateLimitedError):
                    wait = max(wait, error.retry_after)
                self._sleep(wait)
                continue
            raise error
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _transport_error(
        self,
        exc: Exception,
        what: str,
        retryable: bool,
        client_id: str | None,
        trade_id: str | None,
    ) -> LNMarketsError:
        name = type(exc).__name__
        if _is_connect_phase(exc):
            return NetworkUnreachableError(f"{what}: exchange unreachable ({name})", code="unreachable")
        if retryable:
            code = "read_timeout" if _is_read_timeout(exc) else "transport_error"
            return TemporaryError(f"{what}: no answer ({name})", code=code)
        return AmbiguousOutcomeError(
            f"{what}: sent but no answer ({name}); reconcile before retrying",
            client_id=client_id,
            trade_id=trade_id,
            code="read_timeout" if _is_read_timeout(exc) else "connection_lost",
        )

    def _status_error(  # noqa: PLR0911 - a status table
        self,
        status: int,
        text: str,
        what: str,
        retry_after: str | None,
        client_id: str | None,
        trade_id: str | None,
    ) -> LNMarketsError:
        code, message = _error_fields(text)
        code_text = code or f"http_{status}"
        msg = f"{what}: {message or 'HTTP ' + str(status)}"
        mutating = not what.startswith("GET ")
        if status == 429:
            return RateLimitedError(msg, retry_after=_retry_after_seconds(retry_after), code=code_text, status=status)
        if status == 503:
            return TemporaryError(msg, code=code_text, status=status)
        if status >= 500:
            if mutating:
                return AmbiguousOutcomeError(
                    f"{msg}; the exchange may have applied it: reconcile",
                    client_id=client_id,
                    trade_id=trade_id,
                    code=code_text,
                    status=status,
                )
            return TemporaryError(msg, code=code_text, status=status)
        if status == 401:
            return AuthError(msg, code=code_text, status=status)
        if status == 403:
            return PermissionDeniedError(msg, code=code_text, status=status)
        if status == 404:
            return NotFoundError(msg, code=code_text, status=status)
        lowered = message.lower()
        if (code or "").upper() in _INSUFFICIENT_CODES or "insufficient" in lowered or "not enough" in lowered:
            return InsufficientFundsError(msg, code=code_text, status=status)
        if status in (400, 422):
            return InvalidOrderError(msg, code=code_text, status=status)
        return PermanentError(msg, code=code_text, status=status)

    def _get_json(
        self,
        path: str,
        *,
        query: Mapping[str, QueryValue] | None = None,
        auth: bool = True,
        priority: Priority = "normal",
    ) -> tuple[int, JSONValue]:
        status, text = self._request("GET", path, query=query, auth=auth, priority=priority)
        try:
            return status, parse_json(text)
        except ValueError as exc:
            raise ResponseFormatError(f"GET {path}: body is not JSON", status=status) from exc

    def _get(self, model: type[M], path: str, *, auth: bool = True, priority: Priority = "normal") -> M:
        status, data = self._get_json(path, auth=auth, priority=priority)
        return parse_model(model, data, context=f"GET {path}", status=status)

    def _get_list(self, model: type[M], path: str, *, priority: Priority) -> tuple[M, ...]:
        status, data = self._get_json(path, priority=priority)
        return parse_model_list(model, data, context=f"GET {path}", status=status)

    def _get_page(
        self,
        model: type[M],
        path: str,
        query: Mapping[str, QueryValue],
        *,
        auth: bool = True,
        priority: Priority = "normal",
    ) -> Page[M]:
        status, data = self._get_json(path, query=query, auth=auth, priority=priority)
        return parse_page(model, data, context=f"GET {path}", status=status)

    def _mutate_json(
        self,
        method: Method,
        path: str,
        *,
        body: Mapping[str, BodyValue] | None = None,
        query: Mapping[str, QueryValue] | None = None,
        priority: Priority,
        client_id: str | None = None,
        trade_id: str | None = None,
    ) -> tuple[int, JSONValue]:
        status, text = self._request(
            method, path, body=body, query=query, priority=priority, client_id=client_id, trade_id=trade_id
        )
        try:
            return status, parse_json(text)
        except ValueError as exc:
            raise AmbiguousOutcomeError(
                f"{method} {path}: answered {status} with a non-JSON body; reconcile",
                client_id=client_id,
                trade_id=trade_id,
                code="bad_response",
                status=status,
            ) from exc

    def _mutate(
        self,
        model: type[M],
        method: Method,
        path: str,
        *,
        body: Mapping[str, BodyValue] | None = None,
        query: Mapping[str, QueryValue] | None = None,
        priority: Priority,
        client_id: str | None = None,
        trade_id: str | None = None,
    ) -> M:
        status, data = self._mutate_json(
            method, path, body=body, query=query, priority=priority, client_id=client_id, trade_id=trade_id
        )
        try:
            return parse_model(model, data, context=f"{method} {path}", status=status)
        except ResponseFormatError as exc:
            raise AmbiguousOutcomeError(
                f"{exc.message}; the change may have been applied: reconcile",
                client_id=client_id,
                trade_id=trade_id,
                code="bad_response",
                status=status,
            ) from exc

    # --- utilities and account (§4.1, §4.2) -------------------------------------------------------------------

    def ping(self) -> str:
        """``GET /v3/ping`` (public, §4.1): returns ``"pong"``."""
        _, text = self._request("GET", "/ping", auth=False)
        stripped = text.strip()
        return stripped[1:-1] if stripped.startswith('"') and stripped.endswith('"') else stripped

    def time_get(self) -> ServerTime:
        """``GET /v3/time`` (public, §4.1): the server clock."""
        return self._get(ServerTime, "/time", auth=False)

    def account_get(self, *, priority: Priority = "normal") -> Account:
        """``GET /v3/account`` (§4.2, scope ``account:read``)."""
        return self._get(Account, "/account", priority=priority)

    # --- market data (§4.3) -----------------------------------------------------------------------------------

    def futures_ticker_get(self) -> Ticker:
        """``GET /v3/futures/ticker`` (public, §4.3)."""
        return self._get(Ticker, "/futures/ticker", auth=False)

    def futures_candles_list(
        self,
        *,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int | None = None,
        range: str | None = None,  # noqa: A002 - the API's parameter name
        cursor: str | None = None,
    ) -> Page[Candle]:
        """``GET /v3/futures/candles`` (public, §4.3), paginated."""
        query = {
            "from": iso_ms(from_) if from_ else None,
            "to": iso_ms(to) if to else None,
            "limit": limit,
            "range": range,
            "cursor": cursor,
        }
        return self._get_page(Candle, "/futures/candles", query, auth=False)

    # --- isolated trades: reads (§4.4) ------------------------------------------------------------------------

    def isolated_trades_open_list(self, *, priority: Priority = "normal") -> tuple[Trade, ...]:
        """``GET /v3/futures/isolated/trades/open``: resting limit orders."""
        return self._get_list(Trade, "/futures/isolated/trades/open", priority=priority)

    def isolated_trades_running_list(self, *, priority: Priority = "normal") -> tuple[Trade, ...]:
        """``GET /v3/futures/isolated/trades/running``: filled, not yet closed."""
        return self._get_list(Trade, "/futures/isolated/trades/running", priority=priority)

    def isolated_trades_closed_list(
        self,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        priority: Priority = "normal",
    ) -> Page[Trade]:
        """``GET /v3/futures/isolated/trades/closed``, paginated (§2)."""
        query = _history_query(from_, to, limit, cursor)
        return self._get_page(Trade, "/futures/isolated/trades/closed", query, priority=priority)

    def isolated_trades_canceled_list(
        self,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        priority: Priority = "normal",
    ) -> Page[Trade]:
        """``GET /v3/futures/isolated/trades/canceled``, paginated (§2)."""
        query = _history_query(from_, to, limit, cursor)
        return self._get_page(Trade, "/futures/isolated/trades/canceled", query, priority=priority)

    def isolated_funding_fees_list(
        self,
        *,
        trade_id: str | None = None,
        from_: datetime | None = None,
        to: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        priority: Priority = "normal",
    ) -> Page[FundingFee]:
        """``GET /v3/futures/isolated/funding-fees``, paginated, optionally for one trade (§4.4)."""
        query = {"tradeId": trade_id, **_history_query(from_, to, limit, cursor)}
        return self._get_page(FundingFee, "/futures/isolated/funding-fees", query, priority=priority)

    def find_trade_by_client_id(
        self,
        client_id: str,
        *,
        since: datetime | None = None,
        max_pages: int = 3,
        priority: Priority = "high",
    ) -> Trade | None:
        """Reconciliation after ``AmbiguousOutcomeError``: the trade tagged ``client_id``, searching open, running,
        then closed and canceled (newest pages, from ``since`` if given, up to ``max_pages`` each); ``None`` if
        absent. Raises the usual read errors."""
        for trade in self.isolated_trades_open_list(priority=priority):
            if trade.client_id == client_id:
                return trade
        for trade in self.isolated_trades_running_list(priority=priority):
            if trade.client_id == client_id:
                return trade
        for lister in (self.isolated_trades_closed_list, self.isolated_trades_canceled_list):
            cursor: str | None = None
            for _ in range(max_pages):
                page = lister(since, None, None, cursor, priority=priority)
                for trade in page.data:
                    if trade.client_id == client_id:
                        return trade
                cursor = page.next_cursor
                if not cursor:
                    break
        return None

    # --- isolated trades: writes (§4.4) -----------------------------------------------------------------------

    def isolated_trade_create(
        self,
        *,
        type: OrderType,  # noqa: A002 - the API's field name
        side: Side,
        leverage: Decimal | int,
        quantity: int | None = None,
        margin: int | None = None,
        price: Decimal | None = None,
        stoploss: Decimal | None = None,
        takeprofit: Decimal | None = None,
        stoploss_mode: StoplossMode | None = None,
        client_id: str | None = None,
        priority: Priority = "normal",
    ) -> Trade:
        """``POST /v3/futures/isolated/trade`` (scope ``futures:isolated:write``). Validates the §9.7 shape rules
        locally first (``InvalidOrderError``, nothing sent). Never re-sent: on ``AmbiguousOutcomeError`` reconcile
        with ``find_trade_by_client_id(client_id)``; always pass a fresh ``client_id`` for that reason."""
        if (quantity is None) == (margin is None):
            raise InvalidOrderError("exactly one of quantity or margin is required", code="client_validation")
        if (type == "limit") != (price is not None):
            raise InvalidOrderError(
                "price is required for limit orders and forbidden for market orders", code="client_validation"
            )
        if client_id is not None and not 1 <= len(client_id) <= MAX_CLIENT_ID:
            raise InvalidOrderError("clientId must be 1-64 characters", code="client_validation")
        _check_price("price", price)
        _check_price("takeprofit", takeprofit)
        if stoploss_mode != "trailing":
            _check_price("stoploss", stoploss)
        body: dict[str, BodyValue] = {
            "type": type,
            "side": side,
            "quantity": quantity,
            "margin": margin,
            "leverage": Decimal(leverage) if isinstance(leverage, int) else leverage,
            "price": price,
            "stoploss": stoploss,
            "stoplossMode": stoploss_mode,
            "takeprofit": takeprofit,
            "clientId": client_id,
        }
        return self._mutate(Trade, "POST", "/futures/isolated/trade", body=body, priority=priority, client_id=client_id)

    def isolated_trade_close(self, trade_id: str, priority: Priority = "high") -> Trade:
        """``POST /v3/futures/isolated/trade/close`` ``{id}``: close a running trade at market; the closed trade."""
        return self._mutate(
            Trade, "POST", "/futures/isolated/trade/close", body={"id": trade_id}, priority=priority, trade_id=trade_id
        )

    def isolated_trade_cancel(self, trade_id: str, priority: Priority = "high") -> Trade:
        """``POST /v3/futures/isolated/trade/cancel`` ``{id}``: cancel an open limit order; the canceled trade."""
        return self._mutate(
            Trade, "POST", "/futures/isolated/trade/cancel", body={"id": trade_id}, priority=priority, trade_id=trade_id
        )

    def isolated_trades_cancel_all(self, priority: Priority = "high") -> tuple[Trade, ...]:
        """``POST /v3/futures/isolated/trades/cancel-all`` (no body): the canceled trades."""
        path = "/futures/isolated/trades/cancel-all"
        status, data = self._mutate_json("POST", path, priority=priority)
        try:
            return parse_model_list(Trade, data, context=f"POST {path}", status=status)
        except ResponseFormatError as exc:
            raise AmbiguousOutcomeError(f"{exc.message}; reconcile", code="bad_response", status=status) from exc

    def isolated_trade_stoploss_set(
        self, trade_id: str, value: Decimal, mode: StoplossMode = "fixed", priority: Priority = "high"
    ) -> Trade:
        """``PUT /v3/futures/isolated/trade/stoploss`` ``{id, value, mode}``: a fixed price or a trailing distance."""
        if mode == "fixed":
            _check_price("stoploss", value)
        body: dict[str, BodyValue] = {"id": trade_id, "value": value, "mode": mode}
        return self._mutate(
            Trade, "PUT", "/futures/isolated/trade/stoploss", body=body, priority=priority, trade_id=trade_id
        )

    def isolated_trade_stoploss_remove(self, trade_id: str, priority: Priority = "high") -> Trade:
        """``DELETE /v3/futures/isolated/trade/stoploss?id=…``: remove the stop (fixed or trailing)."""
        return self._mutate(
            Trade,
            "DELETE",
            "/futures/isolated/trade/stoploss",
            query={"id": trade_id},
            priority=priority,
            trade_id=trade_id,
        )

    def isolated_trade_takeprofit_set(self, trade_id: str, value: Decimal, priority: Priority = "normal") -> Trade:
        """``PUT /v3/futures/isolated/trade/takeprofit`` ``{id, value}``."""
        _check_price("takeprofit", value)
        return self._mutate(
            Trade,
            "PUT",
            "/futures/isolated/trade/takeprofit",
            body={"id": trade_id, "value": value},
            priority=priority,
            trade_id=trade_id,
        )

    def isolated_trade_takeprofit_remove(self, trade_id: str, priority: Priority = "normal") -> Trade:
        """``DELETE /v3/futures/isolated/trade/takeprofit?id=…``."""
        return self._mutate(
            Trade,
            "DELETE",
            "/futures/isolated/trade/takeprofit",
            query={"id": trade_id},
            priority=priority,
            trade_id=trade_id,
        )

    def isolated_trade_add_margin(self, trade_id: str, amount: int, priority: Priority = "high") -> Trade:
        """``POST /v3/futures/isolated/trade/add-margin`` ``{id, amount}`` (sats > 0): the updated running trade."""
        if amount <= 0:
            raise InvalidOrderError("amount must be > 0 sats", code="client_validation")
        return self._mutate(
            Trade,
            "POST",
            "/futures/isolated/trade/add-margin",
            body={"id": trade_id, "amount": amount},
            priority=priority,
            trade_id=trade_id,
        )

    def isolated_trade_cash_in(self, trade_id: str, amount: int, priority: Priority = "normal") -> Trade:
        """``POST /v3/futures/isolated/trade/cash-in`` ``{id, amount}`` (sats > 0): the updated running trade."""
        if amount <= 0:
            raise InvalidOrderError("amount must be > 0 sats", code="client_validation")
        return self._mutate(
            Trade,
            "POST",
            "/futures/isolated/trade/cash-in",
            body={"id": trade_id, "amount": amount},
            priority=priority,
            trade_id=trade_id,
        )


def _new_pool(base_url: str) -> urllib3.PoolManager:
    """The client's transport: a ``urllib3.PoolManager``, or a ``ProxyManager`` when the environment names an
    http(s) proxy for ``base_url`` (resolved once, here; a ``socks://`` one is refused). Up to ``POOL_MAXSIZE`` idle
    keep-alive connections; a call finding none free opens another (``block=False``). ``urllib3`` never retries or
    redirects on its own; https is verified."""
    ca_certs = _ca_bundle()
    proxy = _environ_proxy(base_url)
    if proxy is None:
        return urllib3.PoolManager(
            maxsize=POOL_MAXSIZE, block=False, retries=False, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs
        )
    auth = parse_url(proxy).auth  # user:password in the proxy URL, sent as Proxy-Authorization (as requests did)
    return urllib3.ProxyManager(
        proxy,
        proxy_headers=make_headers(proxy_basic_auth=unquote(auth)) if auth else None,
        maxsize=POOL_MAXSIZE,
        block=False,
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs,
    )


def _ca_bundle() -> str | None:
    """``certifi``'s CA bundle (what requests verified against); without certifi, urllib3's default: the system's."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        return None
    return certifi.where()


def _environ_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``<scheme>_proxy``, else ``all_proxy``; lower case wins), or
    ``None`` when there is none or ``no_proxy`` exempts the host: ``*``, a host or domain suffix, ``host:port``, or
    (as requests also accepted) a CIDR block holding the host's IP address."""
    split = urlsplit(url)
    host = split.hostname
    proxies = urllib.request.getproxies()
    proxy = proxies.get(split.scheme) or proxies.get("all")
    if not proxy or not host:
        return None
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in no_proxy.replace(" ", "").split(","):
        if "/" in entry and _in_network(host, entry):
            return None
    if urllib.request.proxy_bypass(f"{host}:{split.port}" if split.port and ":" not in host else host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _in_network(host: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _history_query(
    from_: datetime | None, to: datetime | None, limit: int | None, cursor: str | None
) -> dict[str, QueryValue]:
    return {
        "from": iso_ms(from_) if from_ else None,
        "to": iso_ms(to) if to else None,
        "limit": limit,
        "cursor": cursor,
    }
