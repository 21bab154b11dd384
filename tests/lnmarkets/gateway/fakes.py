"""A scripted ``urllib3`` transport: no sockets, every request recorded with its timeout and transport options."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from urllib3 import BaseHTTPResponse, HTTPHeaderDict, HTTPResponse

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.ratelimit import NullRateLimiter

BASE = "http://127.0.0.1:9/v3"
CREDS = Credentials("CANARYKEY-0123456789", "CANARYSECRET-abcdef", "CANARYPASS-987654")


@dataclass
class Reply:
    status: int = 200
    body: str | bytes = "{}"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SentRequest:
    """What the client handed to the transport: method, full URL, headers (case-insensitive), body bytes or None."""

    method: str
    url: str
    headers: HTTPHeaderDict
    body: bytes | None


Step = Reply | BaseException | Callable[[SentRequest], Reply]


class ScriptedPool(urllib3.PoolManager):
    """A ``PoolManager`` whose ``urlopen`` answers from the script (the last step repeats) instead of a socket.

    ``requests``: every request; ``timeouts``: each call's ``(connect, read)``; ``options``: each call's other
    transport arguments (``retries``, ``redirect``, ``preload_content``). An exception step is raised as urllib3
    would raise it with ``retries=False`` (e.g. ``NewConnectionError``, ``ReadTimeoutError``, ``ProtocolError``)."""

    def __init__(self, script: list[Step]) -> None:
        super().__init__()
        self.script = list(script)
        self.requests: list[SentRequest] = []
        self.timeouts: list[tuple[object, object]] = []
        self.options: list[dict[str, object]] = []
        self.cleared = 0

    def urlopen(  # type: ignore[override]  # PoolManager's own signature
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> BaseHTTPResponse:
        timeout = kw.pop("timeout", None)
        if not isinstance(timeout, urllib3.Timeout):
            raise TypeError(f"every call needs a urllib3.Timeout, got {timeout!r}")
        body = kw.pop("body", None)
        if body is not None and not isinstance(body, bytes):
            raise TypeError(f"the body is sent as bytes, got {type(body).__name__}")
        request = SentRequest(method, url, HTTPHeaderDict(kw.pop("headers", None) or {}), body)
        self.requests.append(request)
        self.timeouts.append((timeout.connect_timeout, timeout.read_timeout))
        self.options.append({"redirect": redirect, **kw})
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        reply = step(request) if callable(step) else step
        return HTTPResponse(  # read from a file object, as from a socket (an empty body is b"", not None)
            body=io.BytesIO(reply.body.encode() if isinstance(reply.body, str) else reply.body),
            headers=reply.headers,
            status=reply.status,
            preload_content=True,
            request_method=method,
            request_url=url,
        )

    def clear(self) -> None:
        self.cleared += 1
        super().clear()


def scripted_client(script: list[Step], **kwargs: object) -> tuple[RestClient, ScriptedPool, list[float]]:
    pool = ScriptedPool(script)
    sleeps: list[float] = []
    options: dict[str, object] = {"rate_limiter": NullRateLimiter(), "sleep": sleeps.append}
    options.update(kwargs)
    client = RestClient(BASE, static_provider(CREDS), pool=pool, **options)  # type: ignore[arg-type]
    return client, pool, sleeps


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lnmarkets"


def load(name: str) -> str:
    """The text of a recorded response in tests/fixtures/lnmarkets/."""
    return (FIXTURES / name).read_text()
