"""Every view, form and JSON endpoint, fuzzed: any input gets a 2xx, 3xx or 4xx, never a 500 (issue #12).

The Django test client re-raises a view's exception, so a crash fails the property with its traceback; a 5xx
answer fails it too. Paths come from the URL resolver itself, so a new view is fuzzed without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import given
from hypothesis import strategies as st

from accounts.forms import ExchangeAccountForm, TwoFactorDisableForm
from accounts.models import ExchangeAccount, User
from automations.forms import AuditFilterForm, form_class_for
from automations.models import Automation
from tests.security.fuzzing import FUZZ, NASTY, TEXT

pytestmark = pytest.mark.django_db

_CONVERTER = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


# The site's own routes (the admin is Django's; its login redirect is ours and included).
ROUTES = sorted(r for r in _routes(get_resolver().url_patterns) if not r.startswith("admin/") or r == "admin/login/")
PATH_VALUE = st.one_of(
    st.integers(min_value=0, max_value=2**70).map(str),
    st.sampled_from(["1", "2", "margin_guard", "tpsl", "auto_entry", "x" * 300]),
    st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=30),
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    route = draw(st.sampled_from(ROUTES))
    return "/" + _CONVERTER.sub(lambda _m: draw(PATH_VALUE), route)


def _field_names() -> list[str]:
    names: set[str] = {"next", "action", "on", "page", "account", "username", "password", "otp_token", "type"}
    names |= set(ExchangeAccountForm.base_fields) | set(TwoFactorDisableForm.base_fields)
    names |= set(AuditFilterForm.base_fields)
    for kind in Automation.Kind.values:
        form_class = form_class_for(kind)
        assert form_class is not None
        names |= set(form_class.base_fields)
    return sorted(names)


FIELDS = _field_names()
PARAMS = st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=20)), TEXT, max_size=8)


@pytest.fixture
def fuzz_client(alice: User, make_account: Any) -> Client:  # noqa: ANN401
    make_account(alice, label="main")
    client = Client()
    client.force_login(alice)
    return client


def _assert_handled(response: Any, what: str) -> None:  # noqa: ANN401
    if response.status_code == 503 and response.request["PATH_INFO"] == "/readyz":
        return  # the readiness probe's "not ready" (no worker heartbeat in a test), not a crash
    assert response.status_code < 500, f"{what}: {response.status_code}"


@FUZZ
@given(path=paths(), query=PARAMS)
def test_every_get_with_any_query_answers_below_500(fuzz_client: Client, path: str, query: dict[str, str]) -> None:
    _assert_handled(fuzz_client.get(path, query), f"GET {path} {query!r}")


@FUZZ
@given(path=paths(), form=PARAMS)
def test_every_form_post_with_any_fields_answers_below_500(
    fuzz_client: Client, path: str, form: dict[str, str]
) -> None:
    if path == "/accounts/logout/":
        return  # logs the client out: covered by its own tests
    _assert_handled(fuzz_client.post(path, form), f"POST {path} {form!r}")


JSON_BODY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(
    path=paths(),
    body=st.one_of(JSON_BODY.map(lambda v: __import__("json").dumps(v)), st.binary(max_size=500).map(repr), NASTY),
)
def test_every_json_body_answers_below_500(fuzz_client: Client, path: str, body: str) -> None:
    if path == "/accounts/logout/":
        return
    response = fuzz_client.generic("POST", path, body, content_type="application/json")
    _assert_handled(response, f"POST json {path}")


@FUZZ
@given(path=paths(), query=PARAMS)
def test_anonymous_requests_answer_below_500(client: Client, db: None, path: str, query: dict[str, str]) -> None:
    _assert_handled(client.get(path, query), f"anonymous GET {path}")
    _assert_handled(client.post(path, query), f"anonymous POST {path}")


def test_the_fuzzed_routes_cover_every_view_of_the_site() -> None:
    assert len(ROUTES) >= 29
    for needed in ("accounts/exchange/<int:account_id>/activate/", "realtime/api/snapshot/", "readyz", "metrics"):
        assert needed in ROUTES


def test_the_fuzzed_fields_cover_every_form() -> None:
    assert {"label", "network", "api_key", "otp_token", "password", "next", "name"} <= set(FIELDS)
    assert ExchangeAccount.objects.model is ExchangeAccount
