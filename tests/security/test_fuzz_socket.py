"""Every socket frame, fuzzed: the dashboard consumer answers with a message or an application close, never a crash
(a crash is what Daphne turns into 1011 with an ERROR traceback). Issue #12 items 3 and 4 are pinned here too; the
same frames through real Daphne are in ``test_embedded_hardening``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import User
from realtime.consumers import CLOSE_TOO_LARGE, MAX_FRAME
from tests.realtime.conftest import communicator, connect_as, session_cookie
from tests.security.fuzzing import FUZZ, NASTY

pytestmark = pytest.mark.django_db(transaction=True)

JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=16,
)
MESSAGE = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["ping", "refresh", "switch_account"]), st.text(max_size=20), JSON_VALUE)},
    optional={"account_id": st.one_of(st.integers(min_value=-(2**100), max_value=2**100), JSON_VALUE, NASTY)},
)
TEXT_FRAME = st.one_of(
    MESSAGE.map(json.dumps),
    JSON_VALUE.map(json.dumps),
    NASTY,
    st.text(max_size=400),
    st.integers(min_value=1, max_value=20_000).map(lambda n: "[" * n),
    st.integers(min_value=1, max_value=5_000).map(lambda n: '{"a":' * n),
)
FRAME = st.one_of(TEXT_FRAME.map(lambda t: ("text", t)), st.binary(max_size=300).map(lambda b: ("bytes", b)))
# Close codes an application may send (RFC 6455 §7.4: 1000 and 3000-4999); Daphne answers 1011 for anything else.
VALID_APP_CLOSE = {1000} | set(range(3000, 5000))


async def _exchange(user: User, frames: list[tuple[str, Any]]) -> None:
    comm, _snapshot = await connect_as(user)
    try:
        for kind, payload in frames:
            # send_input, not send_to: an empty frame is a frame too
            await comm.send_input({"type": "websocket.receive", kind: payload})
            output = await comm.receive_output(timeout=3)  # re-raises the consumer's exception, if any
            if output["type"] == "websocket.close":
                assert output.get("code", 1000) in VALID_APP_CLOSE, output
                return
            assert output["type"] == "websocket.send"
            message = json.loads(output["text"])
            assert {"type", "seq", "ts", "data"} <= message.keys()
            # switch_account/refresh may be followed by more messages: drain them
            while not await comm.receive_nothing(timeout=0.05):
                extra = await comm.receive_output(timeout=1)
                assert extra["type"] in {"websocket.send", "websocket.close"}
    finally:
        await comm.disconnect()


@FUZZ
@given(frames=st.lists(FRAME, min_size=1, max_size=4))
def test_any_frame_gets_a_message_or_an_application_close(alice: User, frames: list[tuple[str, Any]]) -> None:
    async_to_sync(_exchange)(alice, frames)


async def _first_reply(user: User, text: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    comm, _ = await connect_as(user)
    try:
        await comm.send_to(text_data=text)
        reply = json.loads((await comm.receive_output(timeout=3))["text"])
        after = None if await comm.receive_nothing(timeout=0.2) else await comm.receive_output(timeout=1)
        return reply, after
    finally:
        await comm.disconnect()


@pytest.mark.parametrize("size", [MAX_FRAME + 1, 32 * 1024, 64 * 1024 - 100])
async def test_item3_oversized_frame_gets_error_and_application_close_code(alice: User, size: int) -> None:
    reply, after = await _first_reply(alice, '"' + "x" * (size - 2) + '"')
    assert reply["data"]["code"] == "too_large"
    assert after == {"type": "websocket.close", "code": CLOSE_TOO_LARGE}
    assert CLOSE_TOO_LARGE in VALID_APP_CLOSE
    assert CLOSE_TOO_LARGE != 1009


@pytest.mark.parametrize("frame", ["[" * 1000, "[" * 10_000, '{"a":' * 3000])
async def test_item4_deeply_nested_json_is_bad_json_not_a_crash(alice: User, frame: str) -> None:
    reply, after = await _first_reply(alice, frame)
    assert reply["data"]["code"] == "bad_json"
    assert after is None  # the socket stays open


@pytest.mark.parametrize("account_id", [2**63, 2**64, -1, 0, 10**30])
async def test_switch_to_an_id_beyond_64_bits_is_a_bad_request(alice: User, account_id: int) -> None:
    reply, _ = await _first_reply(alice, json.dumps({"type": "switch_account", "account_id": account_id}))
    assert reply["data"]["code"] == "bad_request"


async def test_anonymous_and_foreign_origin_sockets_stay_refused(alice: User) -> None:
    connected, code = await communicator(None).connect()
    assert (connected, code) == (False, 4401)
    cookie = await database_sync_to_async(session_cookie)(alice)
    connected, _ = await communicator(cookie, origin="https://evil.example").connect()
    assert not connected
