"""Shared fixtures: named personas (alice owns accounts, bob owns others) and account factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import connections
from pytest_django import DjangoDbBlocker

from accounts import services
from accounts.models import ExchangeAccount, User

pytest_plugins = ["tests.fixtures_simulator"]

CANARY_KEY = "CANARYKEY-7f3a9c1e55b2"
CANARY_SECRET = "CANARYSECRET-d41d8cd98f00b204e980"
CANARY_PASSPHRASE = "CANARYPASS-0cc175b9c0f1b6a8"
CANARIES = (CANARY_KEY, CANARY_SECRET, CANARY_PASSPHRASE)


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
