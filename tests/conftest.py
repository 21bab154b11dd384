"""Shared fixtures: named personas (alice owns accounts, bob owns others) and account factories."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from django.db import connections
from django.test import Client
from pytest_django import DjangoDbBlocker

from accounts import services
from accounts.models import ExchangeAccount, User
from lnmarkets import ratelimit

pytest_plugins = ["tests.fixtures_simulator"]

CANARY_KEY = "CANARYKEY-7f3a9c1e55b2"
CANARY_SECRET = "CANARYSECRET-d41d8cd98f00b204e980"
CANARY_PASSPHRASE = "CANARYPASS-0cc175b9c0f1b6a8"
CANARIES = (CANARY_KEY, CANARY_SECRET, CANARY_PASSPHRASE)


# The embedded pass of `make test` stays short: the browser and slow scenarios run in the PostgreSQL pass (CI runs
# both), or here with AXISOR_ALL_TESTS=1.
_EMBEDDED = not os.environ.get("DATABASE_URL")
_PG_PASS_ONLY = ("browser", "slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _EMBEDDED or os.environ.get("AXISOR_ALL_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="runs in the PostgreSQL pass (or set AXISOR_ALL_TESTS=1)")
    for item in items:
        if any(item.get_closest_marker(name) for name in _PG_PASS_ONLY):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_rate_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the embedded pass each test gets its own in-process limiter granting 50 calls a second (LN Markets allows
    5 a second per key and 1 a second per host for public calls), so that a test's sixth call in a second does not
    sleep. The PostgreSQL pass keeps the real limits on the shared Redis limiter; the limiter's own tests (and the
    simulator's 429s) keep theirs."""
    if os.environ.get("REDIS_URL"):
        return
    monkeypatch.setattr(
        ratelimit,
        "_default",
        (
            os.getpid(),
            ratelimit.InProcessRateLimiter(
                {"auth": ratelimit.BucketLimit(50, 1.0), "public": ratelimit.BucketLimit(50, 1.0)}, window_guard=0.0
            ),
        ),
    )


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """With PostgreSQL the connections are pooled: close the pools before pytest-django drops the test database
    (an idle pooled connection would otherwise keep it "accessed by other users")."""
    yield
    with django_db_blocker.unblock():
        for conn in connections.all():
            close_pool = getattr(conn, "close_pool", None)
            if close_pool is not None:
                close_pool()


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice", password="alice-password-123")


@pytest.fixture
def logged(alice: User) -> Client:
    """A Django test client logged in as alice."""
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob(db: None) -> User:
    return User.objects.create_user("bob", password="bob-password-123")


@pytest.fixture
def make_account(db: None) -> Callable[..., ExchangeAccount]:
    """Create an exchange account directly through the service (no exchange verification)."""

    def make(
        owner: User,
        label: str = "main",
        network: str = "simulator",
        api_key: str = "key-0001",
        api_secret: str = "secret-0001",
        passphrase: str = "pass-0001",
        permissions: tuple[str, ...] = ("account:read", "futures:isolated:read", "futures:isolated:write"),
    ) -> ExchangeAccount:
        return services.exchange_account_create(
            owner=owner,
            label=label,
            network=network,
            api_key=api_key,
            api_secret=api_secret,
            passphrase=passphrase,
            verification=services.Verification(permissions=permissions),
        )

    return make
