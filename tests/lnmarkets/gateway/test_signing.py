"""Golden values of docs/protocol.md §3.3, and "sign exactly the bytes you send" through the client."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from lnmarkets.client import encode_request_body
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.signing import encode_body, hmac_b64, rest_signature, stream_signature
from tests.lnmarkets.gateway.fakes import CREDS, Reply, load, scripted_client

SECRET = "example-secret"
TS = "1700000000000"
TRADE_BODY = '{"type":"market","side":"buy","quantity":100,"leverage":10}'


@pytest.mark.parametrize(
    ("method", "path", "data", "expected"),
    [
        ("POST", "/v3/futures/isolated/trade", TRADE_BODY, "AN1iVoC+FuZyW/fQVYw1pBaBKTOhV8zETRA5Je+lqrE="),
        ("GET", "/v3/account", "", "d8glQY/UShcOx4cHq7rPa+eDwkgYY/yU8fkVIuiEi0w="),
        (
            "GET",
            "/v3/futures/isolated/trades/closed",
            "?limit=10&from=2025-01-01T00%3A00%3A00.000Z",
            "ZjiuAsydG/c0FteCdfcr/LmguOS9BTBshVkwWFwrAyQ=",
        ),
        (
            "DELETE",
            "/v3/futures/isolated/trade/stoploss",
            "?id=d0b9f9a0-4f6e-4a5a-8b7a-7f0f5f9a8a1e",
            "3xPcj3v6D6GNpqKNL4CZ83y5mFfiipoEYjQLmNfLlFE=",
        ),
    ],
)
def test_rest_v3_golden_signatures(method: str, path: str, data: str, expected: str) -> None:
    assert rest_signature(SECRET, TS, method, path, data) == expected


@pytest.mark.parametrize(
    ("prehash", "expected"),
    [
        (
            f'{TS}POST/v2/futures{{"type":"m","side":"b","quantity":100,"leverage":10}}',
            "8z/DVfOtZ5ukvKFtOGNwQLR3kvksnBRr5c38zPuW7F0=",
        ),
        (f"{TS}GET/v2/futurestype=running", "87jTcPBJMJvdbIeqN+1gQ30Cr2Eo2mTHe3arhFR+UKs="),
    ],
)
def test_dead_v2_golden_prehashes_still_hash_as_documented(prehash: str, expected: str) -> None:
    assert hmac_b64(SECRET, prehash) == expected


def test_stream_authenticate_golden_signature() -> None:
    assert stream_signature(SECRET, 1700000000000, "0123456789abcdef") == "91vJULQZvfYtvJ+rlYqXV5v6Gc6VvmI3ijteKYsb0Hk="
    assert stream_signature(SECRET, TS, "0123456789abcdef") == "91vJULQZvfYtvJ+rlYqXV5v6Gc6VvmI3ijteKYsb0Hk="


def test_request_body_matches_signing_encoder_and_writes_decimals_as_numbers() -> None:
    body: dict[str, str | int] = {"type": "market", "side": "buy", "quantity": 100, "leverage": 10}
    assert encode_request_body(body) == encode_body(body) == TRADE_BODY
    assert encode_request_body({"id": "x", "value": Decimal("100000.5"), "mode": None}) == '{"id":"x","value":100000.5}'
    assert encode_request_body({"leverage": Decimal("1E+1")}) == '{"leverage":10}'


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lnmarkets.client.time.time_ns", lambda: 1_700_000_000_000 * 1_000_000)


def _golden_client(reply: Reply):
    client, pool, _ = scripted_client([reply])
    client._credentials = static_provider(Credentials("k", SECRET, "p"))  # noqa: SLF001 - golden secret
    return client, pool


def test_client_post_signs_the_exact_body_it_sends(frozen_clock: None) -> None:
    client, pool = _golden_client(Reply(200, load("trade_running.json")))
    client.isolated_trade_create(type="market", side="buy", quantity=100, leverage=10)
    sent = pool.requests[0]
    assert sent.body == TRADE_BODY.encode()
    assert sent.headers["lnm-access-signature"] == "AN1iVoC+FuZyW/fQVYw1pBaBKTOhV8zETRA5Je+lqrE="
    assert sent.headers["lnm-access-timestamp"] == TS
    assert sent.headers["Content-Type"] == "application/json"


def test_client_get_and_delete_sign_the_exact_query_in_the_url(frozen_clock: None) -> None:
    client, pool = _golden_client(Reply(200, load("account.json")))
    client.account_get()
    assert pool.requests[0].headers["lnm-access-signature"] == "d8glQY/UShcOx4cHq7rPa+eDwkgYY/yU8fkVIuiEi0w="
    assert "Content-Type" not in pool.requests[0].headers
    assert pool.requests[0].body is None

    client, pool = _golden_client(Reply(200, load("trade_running.json")))
    client.isolated_trade_stoploss_remove("d0b9f9a0-4f6e-4a5a-8b7a-7f0f5f9a8a1e")
    sent = pool.requests[0]
    assert urlsplit(sent.url).query == "id=d0b9f9a0-4f6e-4a5a-8b7a-7f0f5f9a8a1e"
    assert sent.headers["lnm-access-signature"] == "3xPcj3v6D6GNpqKNL4CZ83y5mFfiipoEYjQLmNfLlFE="


def test_query_with_reserved_characters_is_not_reencoded(frozen_clock: None) -> None:
    client, pool = _golden_client(Reply(200, '{"data":[],"nextCursor":null}'))
    client._request(  # noqa: SLF001 - the golden query order of §3.3
        "GET", "/futures/isolated/trades/closed", query={"limit": 10, "from": "2025-01-01T00:00:00.000Z"}
    )
    sent = pool.requests[0]
    assert "?" + urlsplit(sent.url).query == "?limit=10&from=2025-01-01T00%3A00%3A00.000Z"
    assert sent.headers["lnm-access-signature"] == "ZjiuAsydG/c0FteCdfcr/LmguOS9BTBshVkwWFwrAyQ="


def test_each_attempt_is_resigned_with_a_fresh_provider_call() -> None:
    calls: list[int] = []

    def provider():
        calls.append(1)
        return CREDS

    client, pool, _ = scripted_client([Reply(503, "{}"), Reply(503, "{}"), Reply(200, '"pong"')], key_id="kid")
    client._credentials = provider  # noqa: SLF001
    client._request("GET", "/account")  # noqa: SLF001
    assert len(pool.requests) == 3
    assert len(calls) == 3
