"""The account page's badge tells each account's private-stream status in words (written by the feed process)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import ExchangeAccount, User
from accounts.stream_status import stream_status, stream_status_set

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_status_left(alice: User) -> None:
    """Account ids repeat across tests (and the test cache outlives one): start with no status stored."""
    cache.delete_many([f"exchange-stream:{pk}" for pk in range(1, 50)])


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("live", "Exchange events live"),
        ("down", "Exchange events down: checked every 30 s"),
        ("failed", "Exchange events refused this key"),
        (None, "Exchange events off"),
    ],
)
def test_badge_says_the_status(
    client: Client, alice: User, make_account: Callable[..., ExchangeAccount], status: str | None, words: str
) -> None:
    account = make_account(alice)
    if status is not None:
        stream_status_set(account.pk, status)  # type: ignore[arg-type]
    client.force_login(alice)
    page = client.get(reverse("accounts:list")).content.decode()
    expected = status or "off"
    assert f'data-stream="{expected}">{words}</span>' in page


def test_portuguese_badge(client: Client, alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    account = make_account(alice)
    stream_status_set(account.pk, "live")
    client.force_login(alice)
    page = client.get(reverse("accounts:list"), headers={"accept-language": "pt-br"}).content.decode()
    assert "Eventos da corretora ao vivo" in page


def test_unknown_value_in_the_cache_reads_off(alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    account = make_account(alice)
    cache.set(f"exchange-stream:{account.pk}", "<script>", timeout=60)
    assert stream_status(account.pk) == "off"
