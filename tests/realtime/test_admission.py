"""Admission control (``realtime.admission``): bounded work, bounded wait, deliberate shedding, over real ASGI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.test import override_settings

from accounts.models import ExchangeAccount, User
from realtime import admission
from realtime.admission import CLOSE_OVERLOADED, Gate, GateLimits, Shed
from tests.realtime.conftest import communicator, connect_as, session_cookie


def _gate(concurrency: int = 1, backlog: int = 1, max_wait_s: float = 5.0, retry: int = 1000) -> Gate:
    return Gate(GateLimits(concurrency=concurrency, backlog=backlog, max_wait_s=max_wait_s, retry_after_ms=retry))


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="invalid gate limits"):
        GateLimits(concurrency=0, backlog=1, max_wait_s=1.0, retry_after_ms=1)


async def test_a_full_backlog_sheds_at_once_with_a_hint_that_grows_with_the_backlog() -> None:
    gate = _gate(concurrency=1, backlog=1, retry=1000)
    await gate.acquire()  # the one slot
    assert gate.retry_after_ms() == 1000
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert gate.waiting == 1
    with pytest.raises(Shed) as shed:
        await gate.acquire()  # backlog full: no wait at all
    assert shed.value.retry_after_ms == 2000  # the backlog is full: twice the base hint
    assert gate.shed == 1
    gate.release()
    await waiter  # the waiter got the released slot
    assert gate.active == 1
    assert gate.waiting == 0
    assert gate.admitted == 2
    gate.release()
    assert gate.active == 0


async def test_a_waiter_is_shed_after_max_wait_and_leaves_the_slots_consistent() -> None:
    gate = _gate(concurrency=1, backlog=5, max_wait_s=0.05)
    async with gate.slot():
        with pytest.raises(Shed):
            await gate.acquire()
        assert gate.waiting == 0
    assert gate.active == 0
    async with gate.slot():  # the slot is free again
        assert gate.active == 1


async def test_slots_bound_concurrency() -> None:
    gate = _gate(concurrency=2, backlog=10)
    running = peak = 0

    async def work() -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(work() for _ in range(8)))
    assert peak == 2
    assert gate.admitted == 8
    assert gate.shed == 0


async def _saturate(name: str) -> Gate:
    """Fill the running loop's gate ``name`` so the next caller is shed."""
    gate = admission.gate(name)
    for _ in range(gate.limits.concurrency):
        await gate.acquire()
    return gate


async def _drain(gate: Gate) -> None:
    for _ in range(gate.limits.concurrency):
        gate.release()


@override_settings(WS_HANDSHAKE_BACKLOG=0)
@pytest.mark.django_db(transaction=True)
async def test_a_saturated_process_sheds_a_socket_with_4429_and_a_delay(alice: User) -> None:
    gate = await _saturate("WS_HANDSHAKE")
    try:
        tab = communicator(await database_sync_to_async(session_cookie)(alice))
        connected, _ = await tab.connect()
        assert connected  # accepted, so that the browser sees the code and the reason (a refusal is a bare 1006)
        frame = await tab.receive_json_from(timeout=3)
        assert frame["type"] == "error"
        assert frame["seq"] == 1
        assert frame["data"]["code"] == "overloaded"
        assert frame["data"]["retry_after_ms"] >= gate.limits.retry_after_ms
        assert await tab.receive_output(timeout=3) == {"type": "websocket.close", "code": CLOSE_OVERLOADED}
    finally:
        await _drain(gate)
    comm, first = await connect_as(alice)  # room again: served normally
    assert first["type"] == "snapshot"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_handshake_slot_is_released_once_the_socket_is_accepted_or_refused(
    alice: User, make_account: Any
) -> None:
    await database_sync_to_async(make_account)(alice)
    gate = admission.gate("WS_HANDSHAKE")
    tabs = [await connect_as(alice) for _ in range(3)]
    anonymous = communicator(None)
    assert (await anonymous.connect())[0] is False
    assert gate.active == 0
    assert gate.admitted >= 4
    for comm, _ in tabs:
        await comm.disconnect()


@override_settings(HTTP_BACKLOG=0)
@pytest.mark.django_db(transaction=True)
async def test_a_saturated_process_answers_a_poll_503_with_retry_after(alice: User) -> None:
    gate = await _saturate("HTTP")
    try:
        cookie = await database_sync_to_async(session_cookie)(alice)
        poll = HttpCommunicator(
            admission.AdmissionMiddleware(_unreachable),
            "GET",
            "/realtime/api/snapshot/",
            headers=[(b"cookie", cookie.encode())],
        )
        response = await poll.get_response(timeout=3)
    finally:
        await _drain(gate)
    assert response["status"] == 503
    headers = dict(response["headers"])
    assert headers[b"retry-after"] == b"10"  # a full backlog: twice the 5 s base hint
    assert json.loads(response["body"]) == {"error": "busy", "retry_after": 10}


async def _unreachable(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a shed request must not reach the application")


@pytest.mark.django_db(transaction=True)
async def test_requests_within_the_limits_reach_django(alice: User, make_account: Any) -> None:
    account: ExchangeAccount = await database_sync_to_async(make_account)(alice)
    from config.asgi import application

    cookie = await database_sync_to_async(session_cookie)(alice)
    headers = [(b"cookie", f"sessionid={cookie}".encode()), (b"host", b"localhost")]
    poll = HttpCommunicator(application, "GET", "/realtime/api/snapshot/", headers=headers)
    response = await poll.get_response(timeout=5)
    assert response["status"] == 200
    assert json.loads(response["body"])["data"]["account"]["id"] == account.pk
    await poll.wait(timeout=5)  # the application returned: its slot is free again
    assert admission.gate("HTTP").active == 0
