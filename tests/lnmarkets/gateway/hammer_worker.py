"""Subprocess of test_multiprocess_limit: call GET /v3/account as fast as the shared limiter allows.

Config comes from the environment (HAMMER_*), not argv, so the test key does not show in process listings.
Prints ``<ok> <rate_limited>`` counts on exit.
"""

from __future__ import annotations

import os
import time

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.exceptions import RateLimitedError
from lnmarkets.ratelimit import RedisRateLimiter


def main() -> None:
    env = os.environ
    creds = Credentials(env["HAMMER_KEY"], env["HAMMER_SECRET"], env["HAMMER_PASSPHRASE"])
    limiter = RedisRateLimiter(env["HAMMER_REDIS"], prefix=env["HAMMER_PREFIX"])
    client = RestClient(env["HAMMER_REST"], static_provider(creds), rate_limiter=limiter, max_retries=0, timeout=5)
    start_at = float(env["HAMMER_START"])
    time.sleep(max(start_at - time.time(), 0))
    end = time.monotonic() + float(env["HAMMER_SECONDS"])
    ok = limited = 0
    while time.monotonic() < end:
        try:
            client.account_get(priority="high")
            ok += 1
        except RateLimitedError:
            limited += 1
    print(ok, limited)  # noqa: T201


if __name__ == "__main__":
    main()
