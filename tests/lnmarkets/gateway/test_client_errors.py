"""Error translation and the retry policy of RestClient, on a scripted transport (no sockets)."""

from __future__ import annotations

import logging
from decimal import Decimal
from http.client import RemoteDisconnected
from typing import Any

import pytest
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

from lnmarkets.credentials import Credentials, mask
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
    TemporaryError,
)
from tests.lnmarkets.gateway.fakes import CREDS, Reply, load, scripted_client

TRADE = load("trade_running.json")


def refused() -> NewConnectionError:
    """What urllib3 raises (``retries=False``) when the connection is refused."""
    return NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]


def read_timeout(message: str) -> ReadTimeoutError:
    return ReadTimeoutError(None, "/", message)  # type: ignore[arg-type]


def create(client):
    return client.isolated_trade_create(type="market", side="buy", quantity=100, leverage=10, client_id="c-1")


def test_hierarchy_matches_the_contract() -> None:
    assert issubclass(RateLimitedError, TemporaryError)
    assert issubclass(NetworkUnreachableError, TemporaryError)
    assert issubclass(PermissionDeniedError, AuthError)
    assert issubclass(AuthError, PermanentError)
    for cls in (InvalidOrderError, InsufficientFundsError, NotFoundError):
        assert issubclass(cls, PermanentError)
    assert not issubclass(AmbiguousOutcomeError, TemporaryError)
    assert not issubclass(ResponseFormatError, TemporaryError)
    assert AmbiguousOutcomeError("x", client_id="c").client_id == "c"
    error = RateLimitedError("slow down", retry_after=2.5, status=429)
    assert (error.retry_after, error.status, error.code) == (2.5, 429, "rate_limited")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, '{"code":"BAD_REQUEST","message":"leverage must be <= 100"}', InvalidOrderError),
        (400, '{"code":"INSUFFICIENT_FUNDS","message":"Not enough balance"}', InsufficientFundsError),
        (401, '{"code":"INVALID_SIGNATURE","message":"Signature is not valid"}', AuthError),
        (403, '{"code":"FORBIDDEN","message":"missing scope"}', PermissionDeniedError),
        (404, '{"code":"NOT_FOUND","message":"no trade"}', NotFoundError),
        (405, "", PermanentError),
        (503, '{"code":"SERVICE_UNAVAILABLE"}', TemporaryError),
        (429, "{}", RateLimitedError),
        (500, "<html>oops</html>", AmbiguousOutcomeError),
        (502, "<html>bad gateway</html>", AmbiguousOutcomeError),
        (504, "", AmbiguousOutcomeError),
    ],
)
def test_order_post_statuses_map_to_typed_errors_and_are_never_resent(status: int, body: str, expected: type) -> None:
    client, pool, _ = scripted_client([Reply(status, body, {"Retry-After": "2"})])
    with pytest.raises(LNMarketsError) as info:
        create(client)
    assert type(info.value) is expected
    assert info.value.status == status
    assert len(pool.requests) == 1
    if isinstance(info.value, AmbiguousOutcomeError):
        assert info.value.client_id == "c-1"


def test_post_read_timeout_is_ambiguous() -> None:
    client, pool, _ = scripted_client([read_timeout("read timed out")])
    with pytest.raises(AmbiguousOutcomeError) as info:
        create(client)
    assert info.value.client_id == "c-1"
    assert info.value.code == "read_timeout"
    assert len(pool.requests) == 1


def test_post_connection_lost_after_sending_is_ambiguous() -> None:
    client, pool, _ = scripted_client(
        [ProtocolError("Connection aborted.", RemoteDisconnected("Remote end closed connection without response"))]
    )
    with pytest.raises(AmbiguousOutcomeError):
        client.isolated_trade_close("t-1")
    assert len(pool.requests) == 1


def test_post_connect_error_is_unreachable_not_ambiguous() -> None:
    client, pool, _ = scripted_client([refused()])
    with pytest.raises(NetworkUnreachableError):
        create(client)
    assert len(pool.requests) == 1


def test_post_unparseable_2xx_is_ambiguous() -> None:
    client, _, _ = scripted_client([Reply(200, "<html>ok</html>")])
    with pytest.raises(AmbiguousOutcomeError):
        create(client)
    client, _, _ = scripted_client([Reply(200, '{"id": "x"}')])
    with pytest.raises(AmbiguousOutcomeError):
        create(client)


def test_get_503_is_retried_with_capped_full_jitter_then_gives_up() -> None:
    client, pool, sleeps = scripted_client([Reply(503, "{}")], max_retries=3)
    with pytest.raises(TemporaryError) as info:
        client.account_get()
    assert info.value.status == 503
    assert len(pool.requests) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (1, 2, 4), strict=True))


def test_get_429_waits_retry_after_then_succeeds() -> None:
    client, pool, sleeps = scripted_client([Reply(429, "{}", {"Retry-After": "3"}), Reply(200, load("account.json"))])
    assert client.account_get().balance == 1_000_000
    assert sleeps
    assert sleeps[0] >= 3
    assert len(pool.requests) == 2


def test_get_connect_errors_are_retried_then_unreachable() -> None:
    client, pool, _ = scripted_client([refused()], max_retries=2)
    with pytest.raises(NetworkUnreachableError):
        client.futures_ticker_get()
    assert len(pool.requests) == 3


def test_get_read_timeout_is_temporary_and_not_retried() -> None:
    client, pool, _ = scripted_client([read_timeout("slow")])
    with pytest.raises(TemporaryError) as info:
        client.account_get()
    assert info.value.code == "read_timeout"
    assert len(pool.requests) == 1


def test_get_bad_body_is_response_format_error() -> None:
    client, _, _ = scripted_client([Reply(200, "<!doctype html><h1>Cloudflare</h1>")])
    with pytest.raises(ResponseFormatError):
        client.account_get()


def test_every_call_has_a_timeout() -> None:
    client, pool, _ = scripted_client([Reply(200, TRADE)], timeout=3.0)
    client.isolated_trade_close("t")
    assert pool.timeouts == [(3.0, 3.0)]


def test_local_validation_sends_nothing() -> None:
    client, pool, _ = scripted_client([Reply(200, TRADE)])
    cases: list[dict[str, Any]] = [
        {"type": "market", "side": "buy", "leverage": 10},
        {"type": "market", "side": "buy", "leverage": 10, "quantity": 1, "margin": 1},
        {"type": "limit", "side": "buy", "leverage": 10, "quantity": 1},
        {"type": "market", "side": "buy", "leverage": 10, "quantity": 1, "price": Decimal(1)},
        {"type": "limit", "side": "buy", "leverage": 10, "quantity": 1, "price": Decimal("100000.3")},
        {"type": "market", "side": "buy", "leverage": 10, "quantity": 1, "client_id": "x" * 65},
    ]
    for case in cases:
        with pytest.raises(InvalidOrderError):
            client.isolated_trade_create(**case)
    with pytest.raises(InvalidOrderError):
        client.isolated_trade_add_margin("t", 0)
    assert pool.requests == []


def test_credentials_never_reach_messages_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[LNMarketsError] = []
    for reply in (Reply(401, '{"message":"bad"}'), Reply(503, "{}"), Reply(502, ""), read_timeout("x")):
        client, _, _ = scripted_client([reply], max_retries=1)
        for call in (client.account_get, lambda c=client: create(c)):
            try:
                call()
            except LNMarketsError as exc:
                errors.append(exc)
    text = " ".join([str(e) + repr(e) for e in errors] + [caplog.text, repr(CREDS), str(CREDS)])
    for secret in (CREDS.key, CREDS.secret, CREDS.passphrase):
        assert secret not in text
    assert "***" in repr(CREDS)
    assert mask(CREDS.key) in repr(CREDS)


def test_credentials_are_frozen() -> None:
    creds = Credentials("k" * 10, "s", "p")
    with pytest.raises(AttributeError):
        creds.secret = "other"  # type: ignore[misc]
