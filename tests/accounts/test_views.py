"""Exchange-account pages: owner scoping, validation, activation, and that no secret is ever echoed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import ExchangeAccount
from tests.conftest import CANARIES, CANARY_KEY, CANARY_PASSPHRASE, CANARY_SECRET

GOOD = {
    "label": "Main",
    "network": "simulator",
    "api_key": "key-abcdef123456",
    "api_secret": "secret-abcdef",
    "passphrase": "pass-abcdef",
}


@pytest.fixture
def verified(monkeypatch):
    """Pretend the exchange accepted the credentials (the gateway tests cover the real verification)."""
    perms = ("account:read", "futures:isolated:read", "futures:isolated:write")
    monkeypatch.setattr("accounts.views.verify_form_credentials", lambda form: services.Verification(permissions=perms))


def test_pages_need_login(client, alice, make_account):
    account = make_account(alice)
    for url in (
        reverse("accounts:list"),
        reverse("accounts:create"),
        reverse("accounts:edit", args=[account.pk]),
        reverse("accounts:delete", args=[account.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("accounts:login") in response["Location"]


def test_create_first_account_becomes_active(client, alice, verified):
    client.force_login(alice)
    response = client.post(reverse("accounts:create"), GOOD)
    assert response.status_code == 302
    account = ExchangeAccount.objects.get(owner=alice)
    assert account.is_active
    assert account.label == "Main"
    assert account.can_trade
    assert services.credentials_for_signing(account_id=account.pk).secret == "secret-abcdef"


def test_list_shows_only_own_accounts(client, alice, bob, make_account):
    make_account(alice, label="alice-main")
    make_account(bob, label="bob-secret-stash")
    client.force_login(alice)
    body = client.get(reverse("accounts:list")).content.decode()
    assert "alice-main" in body
    assert "bob-secret-stash" not in body


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_alice_cannot_view_or_change_bobs_account(client, alice, bob, make_account, action):
    bobs = make_account(bob, label="bob-main")
    client.force_login(alice)
    url = reverse(f"accounts:{action}", args=[bobs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {**GOOD, "label": "hijacked"}).status_code == 404
    bobs.refresh_from_db()
    assert bobs.label == "bob-main"
    assert ExchangeAccount.objects.filter(pk=bobs.pk).exists()


def test_alice_cannot_activate_bobs_account(client, alice, bob, make_account):
    make_account(alice, label="alice-main")
    bobs_first = make_account(bob, label="bob-1")
    bobs_second = make_account(bob, label="bob-2")
    client.force_login(alice)
    assert client.post(reverse("accounts:activate", args=[bobs_second.pk])).status_code == 404
    bobs_first.refresh_from_db()
    bobs_second.refresh_from_db()
    assert bobs_first.is_active
    assert not bobs_second.is_active


def test_activate_switches_the_single_active_account(client, alice, make_account):
    first = make_account(alice, label="one")
    second = make_account(alice, label="two")
    client.force_login(alice)
    response = client.post(reverse("accounts:activate", args=[second.pk]))
    assert response.status_code == 302
    assert list(ExchangeAccount.objects.filter(owner=alice, is_active=True)) == [second]
    first.refresh_from_db()
    assert not first.is_active


def test_activate_ignores_an_offsite_next(client, alice, make_account):
    make_account(alice, label="one")
    second = make_account(alice, label="two")
    client.force_login(alice)
    response = client.post(reverse("accounts:activate", args=[second.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("accounts:list")


def test_activate_needs_post(client, alice, make_account):
    account = make_account(alice)
    client.force_login(alice)
    assert client.get(reverse("accounts:activate", args=[account.pk])).status_code == 405


def test_delete_active_promotes_the_next_account(client, alice, make_account):
    first = make_account(alice, label="a-first")
    second = make_account(alice, label="b-second")
    client.force_login(alice)
    assert client.post(reverse("accounts:delete", args=[first.pk])).status_code == 302
    second.refresh_from_db()
    assert second.is_active
    assert not ExchangeAccount.objects.filter(pk=first.pk).exists()


BAD_INPUTS = [
    pytest.param({**GOOD, "label": ""}, "label", id="empty-label"),
    pytest.param({**GOOD, "api_key": ""}, "api_key", id="empty-key"),
    pytest.param({**GOOD, "api_secret": ""}, "api_secret", id="empty-secret"),
    pytest.param({**GOOD, "passphrase": ""}, "passphrase", id="empty-passphrase"),
    pytest.param({**GOOD, "label": "x" * 10_000}, "label", id="10kB-label"),
    pytest.param({**GOOD, "api_key": "k" * 10_000}, "api_key", id="10kB-key"),
    pytest.param({**GOOD, "api_secret": "s" * 10_000}, "api_secret", id="10kB-secret"),
    pytest.param({**GOOD, "passphrase": "p" * 10_000}, "passphrase", id="10kB-passphrase"),
    pytest.param({**GOOD, "api_key": "clé-🔑-ünïcode"}, "api_key", id="unicode-key"),
    pytest.param({**GOOD, "api_secret": "with space"}, "api_secret", id="space-in-secret"),
    pytest.param({**GOOD, "network": "testnet3"}, "network", id="unknown-network"),
    pytest.param({**GOOD, "network": ""}, "network", id="empty-network"),
    pytest.param({**GOOD, "label": "bad\x00label"}, "label", id="nul-in-label"),
    pytest.param({k: v for k, v in GOOD.items() if k != "api_secret"}, "api_secret", id="missing-field"),
]


@pytest.mark.parametrize(("data", "field"), BAD_INPUTS)
def test_bad_input_gives_a_form_error_and_saves_nothing(client, alice, verified, data, field):
    client.force_login(alice)
    response = client.post(reverse("accounts:create"), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not ExchangeAccount.objects.filter(owner=alice).exists()


def test_unicode_label_is_fine(client, alice, verified):
    client.force_login(alice)
    response = client.post(reverse("accounts:create"), {**GOOD, "label": "Conta principal ₿ 🚀"})
    assert response.status_code == 302
    assert ExchangeAccount.objects.get(owner=alice).label == "Conta principal ₿ 🚀"


def test_duplicate_label_is_a_form_error(client, alice, make_account, verified):
    make_account(alice, label="Main")
    client.force_login(alice)
    response = client.post(reverse("accounts:create"), GOOD)
    assert response.status_code == 200
    assert "label" in response.context["form"].errors


def test_edit_keeps_credentials_when_left_blank(client, alice, make_account, verified):
    account = make_account(alice, label="old", api_secret="keep-me")
    client.force_login(alice)
    response = client.post(
        reverse("accounts:edit", args=[account.pk]),
        {"label": "renamed", "network": "simulator", "api_key": "", "api_secret": "", "passphrase": ""},
    )
    assert response.status_code == 302
    account.refresh_from_db()
    # (another network needs the keys again: tests/security/test_login_security.py, issue #12 item 9)
    assert (account.label, account.network) == ("renamed", "simulator")
    assert services.credentials_for_signing(account_id=account.pk).secret == "keep-me"


def test_edit_with_only_some_credentials_is_refused(client, alice, make_account, verified):
    account = make_account(alice, api_secret="keep-me")
    client.force_login(alice)
    response = client.post(
        reverse("accounts:edit", args=[account.pk]),
        {"label": "x", "network": "simulator", "api_key": "new-key-1", "api_secret": "", "passphrase": ""},
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert services.credentials_for_signing(account_id=account.pk).secret == "keep-me"


def test_edit_replaces_all_three_credentials(client, alice, make_account, verified):
    account = make_account(alice)
    client.force_login(alice)
    response = client.post(
        reverse("accounts:edit", args=[account.pk]),
        {"label": "main", "network": "simulator", "api_key": "k-9999", "api_secret": "s-new", "passphrase": "p-new"},
    )
    assert response.status_code == 302
    creds = services.credentials_for_signing(account_id=account.pk)
    assert (creds.key, creds.secret, creds.passphrase) == ("k-9999", "s-new", "p-new")
    account.refresh_from_db()
    assert account.key_hint == "9999"


CANARY_FORM = {
    "label": "canary",
    "network": "simulator",
    "api_key": CANARY_KEY,
    "api_secret": CANARY_SECRET,
    "passphrase": CANARY_PASSPHRASE,
}


def _assert_no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text


def test_canary_secret_appears_in_no_page_and_no_log(client, alice, verified, caplog):
    caplog.set_level("DEBUG")
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client.force_login(alice)
    # saved through the form
    response = client.post(reverse("accounts:create"), CANARY_FORM)
    assert response.status_code == 302
    account = ExchangeAccount.objects.get(owner=alice)
    pages = [
        reverse("accounts:list"),
        reverse("accounts:edit", args=[account.pk]),
        reverse("accounts:delete", args=[account.pk]),
        reverse("admin:accounts_exchangeaccount_changelist"),
        reverse("admin:accounts_exchangeaccount_change", args=[account.pk]),
        reverse("healthz"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_no_canary(response.content.decode())
    # the admin shows the masked key only
    admin_page = client.get(reverse("admin:accounts_exchangeaccount_change", args=[account.pk])).content.decode()
    assert "••••" + CANARY_KEY[-4:] in admin_page
    # a search for the secret finds nothing (secrets are not searchable; the page only echoes the query typed)
    search = client.get(reverse("admin:accounts_exchangeaccount_changelist") + "?q=" + CANARY_SECRET)
    assert search.context["cl"].result_count == 0
    _assert_no_canary(caplog.text)


def test_form_error_page_does_not_echo_secrets(client, alice, verified):
    client.force_login(alice)
    response = client.post(reverse("accounts:create"), {**CANARY_FORM, "label": ""})
    assert response.status_code == 200
    _assert_no_canary(response.content.decode())


@pytest.mark.parametrize("debug", [False, True])
def test_canary_is_not_on_the_error_page(client, alice, verified, monkeypatch, settings, caplog, debug):
    settings.DEBUG = debug

    def explode(**kwargs):
        api_secret = kwargs["api_secret"]  # a local variable holding the secret, as a careless service might
        raise RuntimeError("database fell over" + ("" if api_secret else "!"))

    monkeypatch.setattr("accounts.services.exchange_account_create", explode)
    client.force_login(alice)
    client.raise_request_exception = False
    response = client.post(reverse("accounts:create"), CANARY_FORM)
    assert response.status_code == 500
    _assert_no_canary(response.content.decode())
    _assert_no_canary(caplog.text)
