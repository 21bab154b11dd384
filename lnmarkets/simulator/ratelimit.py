"""Sliding one-second request windows (§8.1): 5 authenticated req/s per key, 1 public req/s per IP; switchable."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW = 1.0


class RateLimiter:
    def __init__(
        self, enabled: bool, auth_rps: int, public_rps: int, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.enabled = enabled
        self.auth_rps = auth_rps
        self.public_rps = public_rps
        self.now = now
        self.windows: dict[str, deque[float]] = {}

    def configure(self, enabled: bool, auth_rps: int, public_rps: int) -> None:
        self.enabled = enabled
        self.auth_rps = auth_rps
        self.public_rps = public_rps
        self.windows.clear()

    def check(self, bucket: str, limit: int) -> int | None:
        """None when allowed (and counted); else the ``Retry-After`` seconds (≥ 1). Refused requests don't count."""
        if not self.enabled:
            return None
        now = self.now()
        window = self.windows.setdefault(bucket, deque())
        while window and window[0] <= now - WINDOW:
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return None
        return max(1, math.ceil(window[0] + WINDOW - now))

    def check_auth(self, key: str) -> int | None:
        return self.check("key:" + key, self.auth_rps)

    def check_public(self, ip: str) -> int | None:
        return self.check("ip:" + ip, self.public_rps)
