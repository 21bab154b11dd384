"""Fuzzed exchange responses (docs/reliability.md T25c): whatever the body, the client returns a typed model or raises a
typed LNMarketsError; never KeyError/TypeError/ValueError/ValidationError. Scripted transport, no sockets."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lnmarkets.exceptions import AmbiguousOutcomeError, LNMarketsError, ResponseFormatError
from tests.lnmarkets.gateway.fakes import Reply, load, scripted_client

RECORDED = {
    "account_get": load("account.json"),
    "futures_ticker_get": load("ticker.json"),
    "isolated_trades_closed_list": load("trades_closed_page.json"),
    "isolated_trades_running_list": "[" + load("trade_running.json") + "]",
    "isolated_trade_close": load("trade_running.json"),
}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=8),
    st.just("100000"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def mutate(value: object, data: st.DataObject, depth: int = 0) -> object:
    """Drop keys, swap values for junk, recurse into nested objects."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = data.draw(st.sampled_from(["keep", "keep", "drop", "junk", "recurse"]))
            if action == "drop":
                continue
            out[key] = (
                data.draw(junk) if action == "junk" else mutate(item, data, depth + 1) if action == "recurse" else item
            )
        return out
    if isinstance(value, list) and value:
        return [mutate(value[0], data, depth + 1)]
    return value


def call(client, name: str):
    if name == "isolated_trade_close":
        return client.isolated_trade_close("t")
    return getattr(client, name)()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(RECORDED)), data=st.data())
def test_mutated_recorded_responses_give_models_or_typed_errors(name: str, data: st.DataObject) -> None:
    body = json.dumps(mutate(json.loads(RECORDED[name], parse_float=Decimal), data), default=str)
    client, _, _ = scripted_client([Reply(200, body)])
    expected = AmbiguousOutcomeError if name == "isolated_trade_close" else ResponseFormatError
    error: LNMarketsError | None = None
    try:
        call(client, name)
    except LNMarketsError as exc:
        error = exc
    assert error is None or isinstance(error, expected)


@settings(max_examples=100, deadline=None)
@given(
    status=st.sampled_from([200, 201, 400, 401, 403, 404, 418, 429, 500, 502, 503, 504]), body=st.binary(max_size=64)
)
def test_random_bytes_with_any_status_give_typed_errors(status: int, body: bytes) -> None:
    client, _, _ = scripted_client([Reply(status, body)], max_retries=0)
    for name in ("account_get", "isolated_trade_close"):
        with contextlib.suppress(LNMarketsError):
            call(client, name)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "null",
        "[]",
        "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        '{"id": "x"',
        '{"balance": NaN, "id": "x", "username": "u"}',
        '{"id": "x", "username": "u", "balance": "1000"}',
        '{"id": "x", "username": "u", "balance": 1e400}',
        '{"id": "x", "username": "u"}',
    ],
)
@pytest.mark.parametrize("status", [200, 502])
def test_known_bad_bodies(body: str, status: int) -> None:
    client, _, _ = scripted_client([Reply(status, body)], max_retries=0)
    with pytest.raises(LNMarketsError):
        client.account_get()
    with pytest.raises(LNMarketsError):
        client.isolated_trade_close("t")
