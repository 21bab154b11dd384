"""The polling snapshot's fast path (``realtime.fast_snapshot``) answers exactly as Django's own handler does: the
same status, body and headers for an anonymous caller, the owner, another user's account, a bad host and a busy
database; and it keeps only middleware whose absence is argued."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import Client
from psycopg_pool import PoolTimeout

from accounts.models import User
from config.asgi import django_asgi_app
from realtime import fast_snapshot
from realtime.fast_snapshot import FAST_PATH_MIDDLEWARE, SKIPPED, SnapshotFastPath

pytestmark = pytest.mark.django_db(transaction=True)
PATH = "/realtime/api/snapshot/"


async def _call(
    app: Any, *, query: str = "", cookie: str = "", host: str = "testserver", method: str = "GET"
) -> dict[str, Any]:  # noqa: ANN401
    headers = [(b"host", host.encode()), (b"accept", b"application/json")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []
    requested = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()  # the client stays connected (Django stops a request whose client left)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers_out = sorted((k.decode().lower(), v.decode()) for k, v in start["headers"])
    return {"status": start["status"], "headers": headers_out, "body": body}


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """Everything but the snapshot's own timestamp (``ts``), which differs between two calls."""
    out = dict(answer)
    try:
        data = json.loads(answer["body"])
    except ValueError:
        return out
    if isinstance(data, dict):
        data.pop("ts", None)
    out["body"] = data
    out["headers"] = [(k, v) for k, v in answer["headers"] if k != "content-length"]
    return out


async def _both(**kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:  # noqa: ANN401
    fast = await _call(SnapshotFastPath(django_asgi_app), **kwargs)
    django = await _call(django_asgi_app, **kwargs)
    return _comparable(fast), _comparable(django)


def _cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_the_kept_and_skipped_middleware_cover_the_settings_exactly() -> None:
    assert set(settings.MIDDLEWARE) == FAST_PATH_MIDDLEWARE | SKIPPED
    assert not FAST_PATH_MIDDLEWARE & SKIPPED


@pytest.mark.asyncio
async def test_anonymous_gets_the_same_401(alice: User) -> None:
    fast, django = await _both()
    assert fast["status"] == 401
    assert fast == django


@pytest.mark.asyncio
async def test_the_owner_gets_the_same_snapshot_and_headers(alice: User, make_account) -> None:  # noqa: ANN001
    from asgiref.sync import sync_to_async

    account = await sync_to_async(make_account)(alice)
    cookie = await sync_to_async(_cookie)(alice)
    fast, django = await _both(cookie=cookie)
    assert fast["status"] == 200
    assert fast["body"]["data"]["account"]["id"] == account.pk
    assert fast == django
    headers = dict(fast["headers"])
    assert "no-store" in headers["cache-control"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


@pytest.mark.asyncio
async def test_another_users_account_is_the_same_404(alice: User, bob: User, make_account) -> None:  # noqa: ANN001
    from asgiref.sync import sync_to_async

    theirs = await sync_to_async(make_account)(bob)
    cookie = await sync_to_async(_cookie)(alice)
    fast, django = await _both(cookie=cookie, query=f"account={theirs.pk}")
    assert fast["status"] == 404
    assert fast == django


@pytest.mark.asyncio
async def test_a_host_not_allowed_is_the_same_400() -> None:
    fast, django = await _both(host="evil.example")
    assert fast["status"] == 400
    assert fast == django


@pytest.mark.asyncio
async def test_other_methods_go_to_django(alice: User) -> None:
    fast, django = await _both(method="POST")
    assert fast["status"] in (403, 405)  # Django's answer, whichever it is
    assert fast == django


@pytest.mark.asyncio
async def test_an_exhausted_database_pool_is_a_503_with_retry_after(alice: User, make_account) -> None:  # noqa: ANN001
    from asgiref.sync import sync_to_async

    await sync_to_async(make_account)(alice)
    cookie = await sync_to_async(_cookie)(alice)
    exhausted = OperationalError("couldn't get a connection")
    exhausted.__cause__ = PoolTimeout("pool exhausted")
    with mock.patch("realtime.views.fallback_snapshot", side_effect=exhausted):
        fast = await _call(SnapshotFastPath(django_asgi_app), cookie=cookie)
    assert fast["status"] == 503
    assert dict(fast["headers"])["retry-after"] == "5"
    assert json.loads(fast["body"])["error"] == "busy"


def test_the_fast_path_is_what_the_asgi_application_serves() -> None:
    from config import asgi

    router: Any = asgi.application.app  # inside the admission middleware
    http = router.application_mapping["http"]
    assert isinstance(http, SnapshotFastPath)
    assert fast_snapshot.SnapshotFastPath is type(http)
