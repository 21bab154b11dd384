"""Typed errors of the LN Markets gateway: each class says what the caller must do (docs/protocol.md §8.2).

    LNMarketsError
    ├── TemporaryError            retry later (network, 5xx, timeouts on GETs); safe to retry a GET
    │   ├── RateLimitedError      wait ``retry_after`` seconds, then retry
    │   ├── NetworkUnreachableError  the host could not be reached (connect phase): nothing was sent
    │   └── SendDeadlineError     a mutating call was not signed: its send deadline had passed; nothing was sent
    ├── PermanentError            the same request will fail again: never retry
    │   ├── AuthError             wrong key / secret / passphrase / signature (401)
    │   │   └── PermissionDeniedError  the key lacks the scope (403)
    │   ├── InvalidOrderError     rejected by validation (400)
    │   ├── InsufficientFundsError
    │   └── NotFoundError         404 (e.g. unknown trade id)
    ├── AmbiguousOutcomeError     a mutating call may or may not have been applied: reconcile, never re-send blindly
    └── ResponseFormatError       a 2xx answer that is not what the API documents (API drift, broken proxy)

``ResponseFormatError`` is deliberately *not* a ``TemporaryError``: a body that does not match the schema is
usually deterministic (API drift), so the client never retries it in a loop. A caller that polls (the market feed)
simply tries again at its next poll. For a mutating call (POST/PUT/DELETE) the client raises
``AmbiguousOutcomeError`` instead, because the exchange answered 2xx and may have applied the change.

Every error carries ``code`` (the exchange's ``code`` field, or one of ours in lower snake case), ``status`` (the HTTP
status, or ``None`` when no response was received) and a message. Messages never contain credentials: the client
builds them from the method, the path and the exchange's own message only.
"""

from __future__ import annotations


class LNMarketsError(Exception):
    """Base of every gateway error. ``retryable`` tells a generic caller whether a retry can succeed."""

    retryable: bool = False

    def __init__(self, message: str, *, code: str = "error", status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        status = f" status={self.status}" if self.status is not None else ""
        return f"{self.message} [code={self.code}{status}]"


class TemporaryError(LNMarketsError):
    """Transient failure: retrying later may succeed. For a GET, safe to retry; for an order POST it is only raised
    when the request provably was not processed (503, connect-phase errors)."""

    retryable = True


class RateLimitedError(TemporaryError):
    """429 from the exchange, or the local limiter could not grant a slot in time. Wait ``retry_after`` seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        code: str = "rate_limited",
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class NetworkUnreachableError(TemporaryError):
    """The exchange could not be reached (DNS, refused, connect timeout). Nothing was sent."""


class SendDeadlineError(TemporaryError):
    """A mutating request was not sent because its send deadline had passed when it was about to be signed
    (``client.send_deadline``). Nothing reached the exchange."""


class PermanentError(LNMarketsError):
    """The exchange rejected the request for a reason a retry will not fix."""


class AuthError(PermanentError):
    """Wrong API key, passphrase, secret or signature (HTTP 401, or a rejected Stream ``authenticate``)."""


class PermissionDeniedError(AuthError):
    """The key is valid but lacks the scope needed for this call (HTTP 403)."""


class InvalidOrderError(PermanentError):
    """The order or its parameters were rejected (HTTP 400/422), or failed our own pre-send validation."""


class InsufficientFundsError(PermanentError):
    """Not enough balance (or margin) for the order."""


class NotFoundError(PermanentError):
    """HTTP 404: the trade (or resource) does not exist."""


class AmbiguousOutcomeError(LNMarketsError):
    """A mutating call may have been applied: read timeout, connection lost after sending, 500/502/504, or a 2xx
    answer that could not be parsed. The client never re-sends it; the caller must reconcile (for a new trade:
    ``RestClient.find_trade_by_client_id(client_id)``) before any retry (docs/reliability.md §1)."""

    def __init__(
        self,
        message: str,
        *,
        client_id: str | None = None,
        trade_id: str | None = None,
        code: str = "ambiguous_outcome",
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.client_id = client_id
        self.trade_id = trade_id


class ResponseFormatError(LNMarketsError):
    """A successful (2xx) answer whose body does not match the documented schema: not JSON, HTML, empty, missing
    fields, strings where numbers belong. Not retried by the client (see the module docstring)."""

    def __init__(self, message: str, *, code: str = "bad_response", status: int | None = None) -> None:
        super().__init__(message, code=code, status=status)
