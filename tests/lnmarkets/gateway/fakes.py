"""A scripted ``requests`` transport: no sockets, every request recorded with its timeout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

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


Step = Reply | BaseException | Callable[[requests.PreparedRequest], Reply]


class ScriptedAdapter(BaseAdapter):
    def __init__(self, script: list[Step]) -> None:
        super().__init__()
        self.script = list(script)
        self.requests: list[requests.PreparedRequest] = []
        self.timeouts: list[object] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # noqa: ANN001, PLR0913
        self.requests.append(request)
        self.timeouts.append(timeout)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, BaseException):
            raise step
        reply = step(request) if callable(step) else step
        response = requests.Response()
        response.status_code = reply.status
        response._content = reply.body.encode() if isinstance(reply.body, str) else reply.body  # noqa: SLF001
        response.headers = CaseInsensitiveDict(reply.headers)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


def scripted_client(script: list[Step], **kwargs: object) -> tuple[RestClient, ScriptedAdapter, list[float]]:
    adapter = ScriptedAdapter(script)
    session = requests.Session()
    session.mount("http://", adapter)
    sleeps: list[float] = []
    options: dict[str, object] = {"rate_limiter": NullRateLimiter(), "sleep": sleeps.append}
    options.update(kwargs)
    client = RestClient(BASE, static_provider(CREDS), session=session, **options)  # type: ignore[arg-type]
    return client, adapter, sleeps


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lnmarkets"


def load(name: str) -> str:
    """The text of a recorded response in tests/fixtures/lnmarkets/."""
    return (FIXTURES / name).read_text()
