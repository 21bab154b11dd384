"""The operations switch that pauses live dashboard sockets: staff-only page, flag, closing and refusing sockets,
the ``sockets`` field of the HTTP fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.test import Client

from accounts.models import ExchangeAccount, User
from realtime import ops
from realtime.consumers import CLOSE_PAUSED
from tests.realtime.conftest import communicator, connect_as, session_cookie

OPS_URL = "/realtime/ops/"


@pytest.fixture(autouse=True)
def _sockets_open() -> Iterator[None]:
    """Each test starts and ends with live sockets open: the flag lives in the shared cache (Redis in the PostgreSQL
    pass), where another test's pause would otherwise still be set (CI once failed the first test here on it)."""
    cache.delete(ops.PAUSED_KEY)
    yield
    cache.delete(ops.PAUSED_KEY)


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("olga", password="olga-password-123", is_staff=True)


def _expiry(key: str) -> float | None:
    """The stored expiry of ``key`` in the default cache (``None``: never expires)."""
    backend = caches["default"]
    full = backend.make_and_validate_key(key)
    if isinstance(backend, LocMemCache):  # no public API for the expiry: read the backends' own records
        expiry: float | None = backend._expire_info[full]  # type: ignore[attr-defined]
        return expiry
    assert isinstance(backend, RedisCache)
    ttl = int(backend._cache.get_client(full).ttl(full))  # type: ignore[attr-defined]
    assert ttl != -2, "the key is missing"
    return None if ttl == -1 else float(ttl)


def _staff_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- who may use the page -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_and_nothing_changes(client: Client) -> None:
    for response in (client.get(OPS_URL), client.post(OPS_URL, {"action": "pause"})):
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
    assert ops.sockets_paused() is False


@pytest.mark.django_db
def test_non_staff_gets_403_and_nothing_changes(client: Client, alice: User) -> None:
    client.force_login(alice)
    assert client.get(OPS_URL).status_code == 403
    assert client.post(OPS_URL, {"action": "pause"}).status_code == 403
    assert ops.sockets_paused() is False
    ops.sockets_pause(by=User.objects.create_user("root", is_staff=True))
    assert client.post(OPS_URL, {"action": "resume"}).status_code == 403
    assert ops.sockets_paused() is True


@pytest.mark.django_db
def test_post_without_csrf_token_is_refused(staff: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post(OPS_URL, {"action": "pause"}).status_code == 403
    assert ops.sockets_paused() is False


@pytest.mark.django_db
def test_nav_link_only_for_staff(client: Client, alice: User, staff: User) -> None:
    client.force_login(alice)
    assert OPS_URL not in client.get("/").content.decode()
    client.force_login(staff)
    assert OPS_URL in client.get("/").content.decode()


# --- the page -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_pause_and_resume_through_the_page(staff: User, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="realtime.ops")
    client = _staff_client(staff)
    page = client.get(OPS_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-state="open"' in html
    assert 'name="action" value="pause"' in html
    assert "csrfmiddlewaretoken" in html

    response = client.post(OPS_URL, {"action": "pause"}, follow=True)
    assert response.redirect_chain == [(OPS_URL, 302)]
    assert ops.sockets_paused() is True
    html = response.content.decode()
    assert 'data-state="paused"' in html
    assert 'name="action" value="resume"' in html
    assert "olga" in html  # who paused
    assert f"paused by user {staff.pk}" in caplog.text

    client.post(OPS_URL, {"action": "resume"})
    assert ops.sockets_paused() is False
    assert f"resumed by user {staff.pk}" in caplog.text
    assert "olga-password" not in caplog.text


@pytest.mark.django_db
def test_unknown_action_changes_nothing(staff: User) -> None:
    client = _staff_client(staff)
    response = client.post(OPS_URL, {"action": "explode"}, follow=True)
    assert ops.sockets_paused() is False
    assert "Nothing changed" in response.content.decode()
    ops.sockets_pause(by=staff)
    client.post(OPS_URL, {})
    assert ops.sockets_paused() is True


@pytest.mark.django_db
def test_pause_is_idempotent_and_the_flag_has_no_expiry(staff: User) -> None:
    ops.sockets_pause(by=staff)
    first = ops.sockets_state()
    ops.sockets_pause(by=staff)
    assert ops.sockets_state() == first
    assert first["paused"] is True
    assert first["by"] == "olga"
    assert first["since"] is not None
    assert first["since"].utcoffset() is not None  # aware
    assert _expiry(ops.PAUSED_KEY) is None
    ops.sockets_resume(by=staff)
    assert ops.sockets_state() == {"paused": False, "by": None, "since": None}
    ops.sockets_resume(by=staff)  # resuming when open is harmless
    assert ops.sockets_paused() is False


def test_an_unreadable_stored_value_still_means_paused() -> None:
    cache.set(ops.PAUSED_KEY, "garbage", timeout=None)
    assert ops.sockets_state() == {"paused": True, "by": None, "since": None}
    assert ops.mode_of(cache.get(ops.PAUSED_KEY)) == "paused"


# --- the HTTP fallback says whether sockets are paused ----------------------------------------------------------------


@pytest.mark.django_db
def test_snapshot_api_reports_sockets(
    client: Client, alice: User, staff: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    account = make_account(alice)
    client.force_login(alice)
    for url in ("/realtime/api/snapshot/", f"/realtime/api/accounts/{account.pk}/snapshot/"):
        assert client.get(url).json()["sockets"] == "open"
    ops.sockets_pause(by=staff)
    for url in ("/realtime/api/snapshot/", f"/realtime/api/accounts/{account.pk}/snapshot/"):
        body = client.get(url).json()
        assert body["sockets"] == "paused"
        assert body["data"]["account"]["id"] == account.pk  # polling still gets the data
    ops.sockets_resume(by=staff)
    assert client.get("/realtime/api/snapshot/").json()["sockets"] == "open"


# --- sockets --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_staff_pause_closes_open_sockets_refuses_new_ones_and_resume_lets_them_in(
    alice: User, bob: User, staff: User, make_account: Any
) -> None:
    await database_sync_to_async(make_account)(alice)
    alice_tab, _ = await connect_as(alice)
    bob_tab, _ = await connect_as(bob)  # another user, no account: every socket is closed, not only alice's
    client = await database_sync_to_async(_staff_client)(staff)

    response = await database_sync_to_async(client.post)(OPS_URL, {"action": "pause"})
    assert response.status_code == 302
    assert await database_sync_to_async(ops.sockets_paused)() is True
    for tab in (alice_tab, bob_tab):
        reply = await tab.receive_json_from(timeout=3)
        assert reply["type"] == "error"
        assert reply["data"]["code"] == "sockets_paused"
        closed = await tab.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": CLOSE_PAUSED}

    cookie = await database_sync_to_async(session_cookie)(alice)
    connected, code = await communicator(cookie).connect()
    assert not connected
    assert code == CLOSE_PAUSED

    await database_sync_to_async(client.post)(OPS_URL, {"action": "resume"})
    again, first = await connect_as(alice)
    assert first["type"] == "snapshot"
    await again.send_json_to({"type": "ping"})
    assert (await again.receive_json_from(timeout=3))["type"] == "pong"
    await again.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_anonymous_socket_is_still_4401_while_paused(staff: User) -> None:
    await database_sync_to_async(ops.sockets_pause)(by=staff)
    connected, code = await communicator(None).connect()
    assert not connected
    assert code == 4401


@pytest.mark.django_db(transaction=True)
async def test_a_pause_between_the_flag_read_and_the_accept_still_closes_the_socket(
    alice: User, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def read_then_pause_lands() -> bool:
        await database_sync_to_async(ops.sockets_pause)(by=staff)  # lands after the (stale) read
        return False

    monkeypatch.setattr(ops, "sockets_paused_async", read_then_pause_lands)
    tab = communicator(await database_sync_to_async(session_cookie)(alice))
    assert (await tab.connect())[0]
    assert (await tab.receive_json_from(timeout=3))["type"] == "snapshot"
    reply = await tab.receive_json_from(timeout=3)
    assert reply["data"]["code"] == "sockets_paused"
    assert await tab.receive_output(timeout=3) == {"type": "websocket.close", "code": CLOSE_PAUSED}
