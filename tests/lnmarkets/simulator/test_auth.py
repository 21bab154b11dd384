"""§3 authentication: the golden signatures verify, and every kind of wrong request is refused with its status."""

from __future__ import annotations

import time

import pytest

from lnmarkets.signing import hmac_b64, rest_signature, stream_signature
from lnmarkets.simulator.auth import authenticate_rest, authenticate_stream
from lnmarkets.simulator.errors import ApiError
from lnmarkets.simulator.trades import ApiKey

from .helpers import Signed

SECRET = "example-secret"
TS = 1700000000000
KEY = ApiKey(key="k", secret=SECRET, passphrase="p", scopes=("account:read",), account_id="a")
KEYS = {"k": KEY}

GOLDEN_REST = [
    (
        "POST",
        "/v3/futures/isolated/trade",
        '{"type":"market","side":"buy","quantity":100,"leverage":10}',
        "AN1iVoC+FuZyW/fQVYw1pBaBKTOhV8zETRA5Je+lqrE=",
    ),
    ("GET", "/v3/account", "", "d8glQY/UShcOx4cHq7rPa+eDwkgYY/yU8fkVIuiEi0w="),
    (
        "GET",
        "/v3/futures/isolated/trades/closed?limit=10&from=2025-01-01T00%3A00%3A00.000Z",
        "",
        "ZjiuAsydG/c0FteCdfcr/LmguOS9BTBshVkwWFwrAyQ=",
    ),
    (
        "DELETE",
        "/v3/futures/isolated/trade/stoploss?id=d0b9f9a0-4f6e-4a5a-8b7a-7f0f5f9a8a1e",
        "",
        "3xPcj3v6D6GNpqKNL4CZ83y5mFfiipoEYjQLmNfLlFE=",
    ),
]


def headers(signature: str, ts: int = TS, passphrase: str = "p", key: str = "k") -> dict[str, str]:
    return {
        "lnm-access-key": key,
        "lnm-access-passphrase": passphrase,
        "lnm-access-timestamp": str(ts),
        "lnm-access-signature": signature,
    }


@pytest.mark.parametrize(("method", "target", "body", "signature"), GOLDEN_REST)
def test_golden_rest_signatures_verify(method, target, body, signature):
    api_key = authenticate_rest(KEYS, headers(signature), method, target, body, TS + 1000, 30_000)
    assert api_key is KEY


@pytest.mark.parametrize(("method", "target", "body", "signature"), GOLDEN_REST)
def test_golden_rest_signature_with_one_bit_changed_is_refused(method, target, body, signature):
    wrong = signature[:-2] + ("A=" if signature[-2] != "A" else "B=")
    with pytest.raises(ApiError) as caught:
        authenticate_rest(KEYS, headers(wrong), method, target, body, TS, 30_000)
    assert (caught.value.status, caught.value.code) == (401, "INVALID_SIGNATURE")


@pytest.mark.parametrize(
    ("prehash", "signature"),
    [
        (
            '1700000000000POST/v2/futures{"type":"m","side":"b","quantity":100,"leverage":10}',
            "8z/DVfOtZ5ukvKFtOGNwQLR3kvksnBRr5c38zPuW7F0=",
        ),
        ("1700000000000GET/v2/futurestype=running", "87jTcPBJMJvdbIeqN+1gQ30Cr2Eo2mTHe3arhFR+UKs="),
    ],
)
def test_golden_v2_values_are_what_v2_signs_and_v3_refuses_them(prehash, signature):
    assert hmac_b64(SECRET, prehash) == signature
    with pytest.raises(ApiError) as caught:
        authenticate_rest(KEYS, headers(signature), "POST", "/v3/futures/isolated/trade", "", TS, 30_000)
    assert caught.value.status == 401


def test_golden_stream_signature_verifies():
    signature = "91vJULQZvfYtvJ+rlYqXV5v6Gc6VvmI3ijteKYsb0Hk="
    assert stream_signature(SECRET, TS, "0123456789abcdef") == signature
    assert authenticate_stream(KEYS, "k", "p", TS, "0123456789abcdef", signature, TS, 30_000) is KEY
    with pytest.raises(ApiError):
        authenticate_stream(KEYS, "k", "p", TS, "0123456789abcdee", signature, TS, 30_000)


@pytest.mark.parametrize(("offset_ms", "accepted"), [(29_999, True), (30_000, True), (30_001, False), (-30_001, False)])
def test_timestamp_window_boundary(offset_ms, accepted):
    signature = rest_signature(SECRET, str(TS), "get", "/v3/account")
    now = TS + offset_ms
    if accepted:
        assert authenticate_rest(KEYS, headers(signature), "GET", "/v3/account", "", now, 30_000) is KEY
    else:
        with pytest.raises(ApiError) as caught:
            authenticate_rest(KEYS, headers(signature), "GET", "/v3/account", "", now, 30_000)
        assert caught.value.code == "INVALID_TIMESTAMP"


# -- over HTTP ---------------------------------------------------------------------------------------------------
def test_a_correct_v3_request_is_accepted(sim, sim_account):
    client = Signed(sim, sim_account)
    assert client.get("/account").status == 200
    reply = client.get("/futures/isolated/trades/closed", {"limit": 10, "from": "2025-01-01T00:00:00.000Z"})
    assert reply.status == 200
    assert reply.body == {"data": [], "nextCursor": None}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"v2": True}, 401, "INVALID_SIGNATURE"),
        ({"timestamp": -31_000}, 401, "INVALID_TIMESTAMP"),
        ({"timestamp": +31_000}, 401, "INVALID_TIMESTAMP"),
        ({"passphrase": "wrong-passphrase"}, 401, "INVALID_PASSPHRASE"),
        ({"key": "no-such-key"}, 401, "INVALID_API_KEY"),
        ({"secret": "not-the-secret"}, 401, "INVALID_SIGNATURE"),
    ],
)
def test_wrong_requests_are_refused(sim, sim_account, kwargs, status, code):
    client = Signed(sim, sim_account)
    if "timestamp" in kwargs:  # an offset from now, applied at run time
        kwargs = {"timestamp": int(time.time() * 1000) + kwargs["timestamp"]}
    reply = client.post(
        "/futures/isolated/trade", {"type": "market", "side": "buy", "quantity": 1, "leverage": 10}, **kwargs
    )
    assert (reply.status, reply.body["code"]) == (status, code)
    assert isinstance(reply.body["message"], str)
    assert sim.call(lambda ex: ex.counters["trades"]) == 0


def test_v2_signed_get_with_query_is_refused(sim, sim_account):
    reply = Signed(sim, sim_account).get("/futures/isolated/trades/closed", {"limit": 5}, v2=True)
    assert reply.status == 401


def test_missing_headers_are_refused(sim):
    import requests

    reply = requests.get(sim.rest_url + "/account", timeout=5)
    assert reply.status_code == 401
    assert reply.json()["code"] == "MISSING_CREDENTIALS"


def test_a_key_without_write_scope_cannot_trade(sim):
    account = sim.control.create_account(scopes=["account:read", "futures:isolated:read"])
    client = Signed(sim, account)
    reply = client.trade(type="market", side="buy", quantity=1, leverage=10)
    assert (reply.status, reply.body["code"]) == (403, "FORBIDDEN")
    assert client.get("/futures/isolated/trades/running").status == 200
    assert client.balance() == 1_000_000


def test_a_key_without_account_read_cannot_read_the_account(sim):
    account = sim.control.create_account(scopes=["futures:isolated:read"])
    assert Signed(sim, account).get("/account").status == 403


def test_signature_over_query_must_match_the_url_exactly(sim, sim_account):
    client = Signed(sim, sim_account)
    ts = str(int(time.time() * 1000))
    # Signed over the unencoded query but sent percent-encoded: refused.
    signature = rest_signature(
        sim_account.secret, ts, "get", "/v3/futures/isolated/trades/closed", "?from=2025-01-01T00:00:00.000Z"
    )
    import requests

    response = requests.get(
        sim.rest_url + "/futures/isolated/trades/closed?from=2025-01-01T00%3A00%3A00.000Z",
        headers={
            "lnm-access-key": sim_account.key,
            "lnm-access-passphrase": sim_account.passphrase,
            "lnm-access-timestamp": ts,
            "lnm-access-signature": signature,
        },
        timeout=5,
    )
    assert response.status_code == 401
    assert client.get("/futures/isolated/trades/closed", {"from": "2025-01-01T00:00:00.000Z"}).status == 200


def test_upper_case_header_names_work(sim, sim_account):
    import requests

    ts = str(int(time.time() * 1000))
    response = requests.get(
        sim.rest_url + "/account",
        headers={
            "LNM-ACCESS-KEY": sim_account.key,
            "LNM-ACCESS-PASSPHRASE": sim_account.passphrase,
            "LNM-ACCESS-TIMESTAMP": ts,
            "LNM-ACCESS-SIGNATURE": rest_signature(sim_account.secret, ts, "GET", "/v3/account"),
        },
        timeout=5,
    )
    assert response.status_code == 200
