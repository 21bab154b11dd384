"""A tiny signed REST v3 client for the simulator tests (requests + lnmarkets.signing), with ways to sign wrongly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from lnmarkets.signing import encode_query, hmac_b64, rest_signature
from lnmarkets.simulator import RunningSimulator, SimAccount
from lnmarkets.simulator.wire import dumps


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


class Signed:
    def __init__(self, sim: RunningSimulator, account: SimAccount) -> None:
        self.sim = sim
        self.account = account
        self.session = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        *,
        raw_body: str | None = None,
        timestamp: int | None = None,
        passphrase: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        v2: bool = False,
        timeout: float = 5.0,
    ) -> Reply:
        full = "/v3" + path
        query = encode_query(params or {})
        text = raw_body if raw_body is not None else (dumps(body) if body is not None else "")
        ts = str(timestamp if timestamp is not None else int(time.time() * 1000))
        data = text if text else query
        signing_secret = secret or self.account.secret
        if v2:
            signature = hmac_b64(signing_secret, f"{ts}{method.upper()}{full}{data.lstrip('?')}")
        else:
            signature = rest_signature(signing_secret, ts, method, full, data)
        headers = {
            "lnm-access-key": key or self.account.key,
            "lnm-access-passphrase": passphrase or self.account.passphrase,
            "lnm-access-timestamp": ts,
            "lnm-access-signature": signature,
        }
        if text:
            headers["Content-Type"] = "application/json"
        response = self.session.request(
            method.upper(),
            self.sim.base_url + full + query,
            data=text.encode() if text else None,
            headers=headers,
            timeout=timeout,
        )
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        return Reply(response.status_code, parsed, response.headers)

    def get(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return self.request("get", path, params=params, **kw)

    def post(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return self.request("post", path, body=body, **kw)

    def put(self, path: str, body: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return self.request("put", path, body=body, **kw)

    def delete(self, path: str, params: dict[str, Any] | None = None, **kw: Any) -> Reply:
        return self.request("delete", path, params=params, **kw)

    # shortcuts
    def trade(self, **body: Any) -> Reply:
        return self.post("/futures/isolated/trade", body)

    def ok_trade(self, **body: Any) -> dict[str, Any]:
        reply = self.trade(**body)
        assert reply.status == 200, reply.body
        trade: dict[str, Any] = reply.body
        return trade

    def running(self) -> list[dict[str, Any]]:
        reply = self.get("/futures/isolated/trades/running")
        assert reply.status == 200, reply.body
        trades: list[dict[str, Any]] = reply.body
        return trades

    def balance(self) -> int:
        reply = self.get("/account")
        assert reply.status == 200, reply.body
        return int(reply.body["balance"])
