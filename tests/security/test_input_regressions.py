"""Issue #12 items 1 and 2: the inputs that crashed a view, each pinned; and the parsers behind the fixes."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import ExchangeAccount, User
from config.params import MAX_ID, parse_id, safe_redirect_target
from tests.security.fuzzing import FUZZ

pytestmark = pytest.mark.django_db

BAD_IDS = ["²", "١٢", "1" * 4301, "9" * 5000, "9" * 19, "-1", "0", " 1", "1 ", "+1", "0x1", "1.0", "１"]


@pytest.fixture
def logged_in(alice: User, make_account: Any) -> tuple[Client, ExchangeAccount]:  # noqa: ANN401
    account = make_account(alice, label="main")
    client = Client()
    client.force_login(alice)
    return client, account


@pytest.mark.parametrize("raw", BAD_IDS)
@pytest.mark.parametrize("path", ["/", "/realtime/positions/", "/automations/new/margin_guard/", "/automations/new/"])
def test_item1_pages_ignore_or_refuse_a_bad_account_parameter(logged_in, path: str, raw: str) -> None:
    client, _account = logged_in
    response = client.get(path, {"account": raw})
    assert response.status_code in {200, 404}


@pytest.mark.parametrize("raw", BAD_IDS)
def test_item1_snapshot_api_answers_404_json_for_a_bad_account_parameter(logged_in, raw: str) -> None:
    client, _account = logged_in
    response = client.get("/realtime/api/snapshot/", {"account": raw})
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


def test_item1_a_good_account_parameter_still_works(logged_in) -> None:
    client, account = logged_in
    assert client.get("/realtime/api/snapshot/", {"account": str(account.pk)}).json()["data"]["account"]["id"] == (
        account.pk
    )
    assert client.get("/automations/new/margin_guard/", {"account": str(account.pk)}).status_code == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("foo", "foo"),  # was reversed as a URL name: NoReverseMatch, 500
        ("accounts:list", "/accounts/exchange/"),  # read as a scheme "accounts:": refused, the default target
        ("/automations/", "/automations/"),
        ("https://evil.example/", "/accounts/exchange/"),
        ("//evil.example", "/accounts/exchange/"),
        ("/ok\r\nSet-Cookie: a=b", "/accounts/exchange/"),
        ("/" + "a" * 5000, "/accounts/exchange/"),
        ("javascript:alert(1)", "/accounts/exchange/"),
    ],
)
def test_item2_activate_next_is_a_url_on_this_site_or_ignored(logged_in, target: str, expected: str) -> None:
    client, account = logged_in
    response = client.post(f"/accounts/exchange/{account.pk}/activate/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == expected


@FUZZ
@given(raw=st.one_of(st.text(max_size=30), st.integers().map(str), st.none(), st.binary().map(repr)))
def test_parse_id_returns_a_64_bit_positive_id_or_none(raw: object) -> None:
    value = parse_id(raw)
    if value is not None:
        assert isinstance(raw, str)
        assert 0 < value <= MAX_ID
        assert raw == str(int(raw).__index__()).zfill(len(raw))


@FUZZ
@given(raw=st.text(max_size=200), https=st.booleans())
def test_safe_redirect_target_never_leaves_the_site_or_breaks_a_header(raw: str, https: bool) -> None:
    target = safe_redirect_target(raw, host="testserver", require_https=https)
    if target is not None:
        assert "\n" not in target
        assert "\r" not in target
        assert not target.startswith(("//", "http://evil", "https://evil", "javascript:"))
