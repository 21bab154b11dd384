"""Injected faults (control API): REST delays and error statuses before or after processing, Stream drops and
silences, and a stale ticker time.

REST kinds, by when they act:

* before processing: ``delay`` (wait, then process unless the client has gone), ``hold`` (wait, then process even if
  the client has gone: a request stuck in the exchange's queue; the signature's timestamp window is checked when it
  is processed, as for any request), ``status`` (answer an error status, process nothing);
* after processing: ``accept_then_delay`` (the change is made, the answer comes ``seconds`` later),
  ``accept_then_status`` (the change is made, an error status is answered), ``accept_then_fail_get`` (the change is
  made and answered; for the next ``seconds`` every GET of the same API key answers ``status``: the follow-up read
  fails).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from decimal import Decimal

from lnmarkets.simulator.errors import STATUS_KIND, bad_request

REST_PRE = ("delay", "hold", "status")
REST_POST = ("accept_then_delay", "accept_then_status", "accept_then_fail_get")
TIMED = ("stream_drop", "stream_silence", "stale_ticker")
KINDS = REST_PRE + REST_POST + TIMED
MAX_SECONDS = Decimal(3600)
NEEDS_SECONDS = ("delay", "hold", "accept_then_delay", "accept_then_fail_get", "stream_silence", "stale_ticker")


@dataclass
class Fault:
    id: str
    kind: str
    method: str | None = None
    path: str | None = None
    remaining: int | None = 1
    seconds: float = 0.0
    status: int | None = None
    retry_after: int | None = None
    until: float = 0.0  # monotonic end of a timed fault

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method.upper()) and (
            self.path is None or self.path == path
        )

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "count": self.remaining,
            "seconds": self.seconds,
            "status": self.status,
            "retryAfter": self.retry_after,
        }


class Faults:
    def __init__(self) -> None:
        self.items: list[Fault] = []
        self._ids = itertools.count(1)
        # API key → (monotonic end, status) of an armed ``accept_then_fail_get``.
        self.failing_reads: dict[str, tuple[float, int]] = {}

    def fail_reads(self, key: str, fault: Fault) -> None:
        assert fault.status is not None
        self.failing_reads[key] = (time.monotonic() + fault.seconds, fault.status)

    def read_failure(self, key: str | None) -> int | None:
        """The status a GET of ``key`` must answer now, if its reads are failing."""
        armed = self.failing_reads.get(key or "")
        if armed is None:
            return None
        if armed[0] <= time.monotonic():
            del self.failing_reads[key or ""]
            return None
        return armed[1]

    def add(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        count: int | None = 1,
        seconds: Decimal | None = None,
        status: int | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        if kind not in KINDS:
            raise bad_request(f"kind must be one of {', '.join(KINDS)}")
        if seconds is not None and not (0 <= seconds <= MAX_SECONDS):
            raise bad_request("seconds must be between 0 and 3600")
        if kind in NEEDS_SECONDS and seconds is None:
            raise bad_request(f"{kind} needs seconds")
        if kind in ("status", "accept_then_status", "accept_then_fail_get") and status not in STATUS_KIND:
            raise bad_request(f"{kind} needs a status among {', '.join(map(str, STATUS_KIND))}")
        if count is not None and count < 1:
            raise bad_request("count must be >= 1 or null")
        fault = Fault(
            id=f"f{next(self._ids)}",
            kind=kind,
            method=method,
            path=path,
            remaining=count,
            seconds=float(seconds or 0),
            status=status,
            retry_after=retry_after,
        )
        if kind in TIMED:
            fault.remaining = None
            fault.until = time.monotonic() + fault.seconds
        self.items.append(fault)
        return fault

    def take(self, method: str, path: str, kinds: tuple[str, ...]) -> list[Fault]:
        """The REST faults of ``kinds`` that apply to this request; their remaining counts are used up."""
        if not self.items:
            return []
        hits = [f for f in self.items if f.kind in kinds and f.matches(method, path)]
        for fault in hits:
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.items.remove(fault)
        return hits

    def prune(self) -> None:
        now = time.monotonic()
        self.items = [f for f in self.items if f.kind not in TIMED or f.until > now]

    def clear(self) -> int:
        count = len(self.items)
        self.items.clear()
        self.failing_reads.clear()
        return count

    def as_json(self) -> list[dict[str, object]]:
        self.prune()
        return [fault.as_json() for fault in self.items]
