"""``ControlClient``: a small synchronous client (requests, 5 s timeout) for the ``/_sim`` control API."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests

from lnmarkets.simulator.wire import dumps

DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class SimAccount:
    id: str
    username: str
    key: str
    secret: str
    passphrase: str
    scopes: tuple[str, ...]
    balance: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimAccount:
        return cls(
            id=data["id"],
            username=data["username"],
            key=data["key"],
            secret=data["secret"],
            passphrase=data["passphrase"],
            scopes=tuple(data["scopes"]),
            balance=int(data["balance"]),
        )


class ControlError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


def _num(value: Decimal | str | int | float | None) -> Decimal | int | None:
    """Numbers go out as exact JSON numbers (Decimal text), never via binary float arithmetic."""
    if value is None or isinstance(value, int):
        return value
    return Decimal(str(value))


class ControlClient:
    def __init__(self, base_url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/") + "/_sim"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        data = None
        headers = {}
        if body is not None:
            data = dumps(body)
            headers["Content-Type"] = "application/json"
        response = self.session.request(
            method, self.base_url + path, data=data, params=params, headers=headers, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise ControlError(response.status_code, response.text)
        return response.json()

    def create_account(
        self,
        balance: int = 1_000_000,
        scopes: list[str] | tuple[str, ...] | None = None,
        username: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        passphrase: str | None = None,
    ) -> SimAccount:
        body = {"balance": balance, "scopes": None if scopes is None else list(scopes), "username": username}
        body.update({"key": key, "secret": secret, "passphrase": passphrase})
        return SimAccount.from_json(self._call("POST", "/accounts", body))

    def add_key(self, account_id: str, scopes: list[str] | tuple[str, ...] | None) -> SimAccount:
        body = {"scopes": None if scopes is None else list(scopes)}
        return SimAccount.from_json(self._call("POST", f"/accounts/{account_id}/keys", body))

    def set_balance(self, account_id: str, balance: int) -> Any:
        return self._call("POST", f"/accounts/{account_id}/balance", {"balance": balance})

    def reset_account(self, account_id: str, balance: int) -> dict[str, Any]:
        """Close the account's running trades, cancel its open orders and set its balance."""
        result: dict[str, Any] = self._call("POST", f"/accounts/{account_id}/reset", {"balance": balance})
        return result

    def account_of_key(self, key: str) -> dict[str, Any]:
        """The account ``key`` belongs to (``ControlError`` 404 for an unknown key)."""
        result: dict[str, Any] = self._call("GET", f"/keys/{quote(key, safe='')}")
        return result

    def set_price(self, price: Decimal | str | int, index: Decimal | str | int | None = None) -> Any:
        return self._call("POST", "/price", {"price": _num(price), "index": _num(index)})

    def step(self, n: int = 1) -> Any:
        return self._call("POST", "/step", {"n": n})

    def freeze(self, frozen: bool = True) -> Any:
        return self._call("POST", "/freeze", {"frozen": frozen})

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    def inject_fault(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        count: int | None = 1,
        seconds: float | None = None,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> str:
        body: dict[str, Any] = {"kind": kind, "method": method, "path": path, "count": count, "status": status}
        body.update({"seconds": _num(seconds), "retryAfter": retry_after})
        return str(self._call("POST", "/faults", body)["id"])

    def clear_faults(self) -> Any:
        return self._call("DELETE", "/faults")

    def requests_for_client_id(self, client_id: str) -> int:
        return int(self._call("GET", "/requests", params={"clientId": client_id})["count"])

    def requests_for_trade(self, trade_id: str) -> dict[str, int]:
        """Mutating requests naming ``trade_id`` (close, add-margin, stoploss…), counted per path."""
        counts: dict[str, int] = self._call("GET", "/requests", params={"tradeId": trade_id})["counts"]
        return counts

    def request_log(self, key: str) -> list[float]:
        return [float(t) for t in self._call("GET", "/requests/log", params={"key": key})["times"]]

    def request_log_full(self, key: str) -> dict[str, Any]:
        """The log with the ``statuses`` list parallel to ``times``."""
        result: dict[str, Any] = self._call("GET", "/requests/log", params={"key": key})
        return result

    def set_rate_limits(self, enabled: bool, auth_rps: int = 5, public_rps: int = 1) -> Any:
        return self._call("POST", "/ratelimits", {"enabled": enabled, "authRps": auth_rps, "publicRps": public_rps})

    def settle_funding(self, rate: Decimal | str | int | None = None) -> Any:
        return self._call("POST", "/funding", {"rate": _num(rate)})

    def reset(self) -> Any:
        return self._call("POST", "/reset")

    def close(self) -> None:
        self.session.close()
