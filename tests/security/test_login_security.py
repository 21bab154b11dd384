"""Item 5 (login throttling, django-axes) and two-factor authentication (django-otp TOTP): at login, before
exchange keys are added or changed, and turning it on and off (docs/reliability.md T25a)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import two_factor
from accounts.models import ExchangeAccount, User
from accounts.services import Verification
from config.client_ip import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "alice-password-123"


def _login(client: Client, username: str, password: str, ip: str = "203.0.113.7", **extra: Any) -> Any:  # noqa: ANN401
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def _code(device: TOTPDevice, drift: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift):06d}"


def _unthrottle(device: TOTPDevice) -> None:
    """django-otp doubles the wait after each wrong code (tested by the wrong-code asserts): clear it to go on."""
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0, throttling_failure_timestamp=None)


# --- item 5: throttling -------------------------------------------------------------------------------------------


def test_item5_wrong_passwords_lock_the_username_at_that_address_with_429(alice: User, caplog) -> None:
    client = Client()
    with caplog.at_level(logging.INFO, logger="axes"):
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert _login(client, "alice", "wrong").status_code == 200  # the form again, with its error
        locked = _login(client, "alice", "wrong")
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert f"Try again in {round(settings.AXES_COOLOFF_TIME * 60)} minutes".encode() in locked.content
    # even the right password is refused during the cool-off, before any hashing
    assert _login(client, "alice", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    failures = [r for r in caplog.records if "login failure" in r.getMessage().lower() or "locked" in r.getMessage()]
    assert failures, "failed logins are logged"
    assert all(PASSWORD not in r.getMessage() and "wrong" not in r.getMessage() for r in caplog.records)


def test_item5_no_mass_lockout_of_a_shared_address_or_of_the_user_elsewhere(alice: User, bob: User) -> None:
    attacker = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT + 3):
        _login(attacker, "alice", "wrong", ip="198.51.100.1")
    assert _login(Client(), "alice", "wrong", ip="198.51.100.1").status_code == 429
    # bob behind the same NAT address logs in
    assert _login(Client(), "bob", "bob-password-123", ip="198.51.100.1").status_code == 302
    # alice from her own address logs in
    assert _login(Client(), "alice", PASSWORD, ip="192.0.2.44").status_code == 302


def test_item5_the_lockout_ends_after_the_cool_off(alice: User) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "alice", "wrong")
    assert _login(client, "alice", PASSWORD).status_code == 429
    cooloff = timedelta(hours=settings.AXES_COOLOFF_TIME)
    AccessAttempt.objects.update(attempt_time=timezone.now() - cooloff - timedelta(seconds=5))
    assert _login(client, "alice", PASSWORD).status_code == 302


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_one_proxy_the_client_address_is_the_one_the_proxy_appended() -> None:
    rf = RequestFactory()
    spoofed = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_ip(spoofed) == "203.0.113.9"
    assert client_ip(rf.get("/", REMOTE_ADDR="127.0.0.1")) == "127.0.0.1"
    assert client_ip(rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")) is None


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert client_ip(request) == "192.0.2.1"


def test_admin_login_goes_through_the_site_login() -> None:
    response = Client().get("/admin/login/", {"next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2F"


# --- two-factor authentication ------------------------------------------------------------------------------------


def _turn_on(client: Client, user: User) -> TOTPDevice:
    assert client.post("/accounts/two-factor/", {"action": "start"}).status_code == 302
    page = client.get("/accounts/two-factor/")
    assert b"<svg" in page.content  # the QR code, inline (no script, no external image)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert client.post("/accounts/two-factor/", {"action": "confirm", "otp_token": "000000"}).status_code == 200
    assert not two_factor.is_enabled(user)
    _unthrottle(device)
    response = client.post("/accounts/two-factor/", {"action": "confirm", "otp_token": _code(device)})
    assert response.status_code == 302
    assert two_factor.is_enabled(user)
    device.refresh_from_db()
    confirmed: TOTPDevice = device
    return confirmed


@pytest.fixture
def alice_2fa(alice: User) -> tuple[User, TOTPDevice]:
    client = Client()
    client.force_login(alice)
    return alice, _turn_on(client, alice)


def test_login_with_2fa_needs_the_code_after_the_password(alice_2fa) -> None:
    user, device = alice_2fa
    client = Client()
    response = client.post("/accounts/login/?next=/automations/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/code/"
    assert "_auth_user_id" not in client.session  # not logged in yet
    assert client.get("/automations/").status_code == 302  # still the login page
    wrong = client.post("/accounts/login/code/", {"otp_token": "123456" if _code(device, 1) != "123456" else "654321"})
    assert wrong.status_code == 200
    assert b"not valid" in wrong.content
    _unthrottle(device)
    ok = client.post("/accounts/login/code/", {"otp_token": _code(device, 1)})
    assert ok.status_code == 302
    assert ok["Location"] == "/automations/"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_code_step_expires_after_too_many_wrong_codes(alice_2fa) -> None:
    client = Client()
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    for _ in range(two_factor.MAX_PENDING_FAILURES):
        client.post("/accounts/login/code/", {"otp_token": "000000"})
    response = client.get("/accounts/login/code/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_the_code_step_without_a_password_first_goes_back_to_login(db: None) -> None:
    response = Client().post("/accounts/login/code/", {"otp_token": "123456"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_a_used_code_cannot_be_replayed(alice_2fa) -> None:
    user, device = alice_2fa
    code = _code(device, 1)
    assert two_factor.verify_code(user, code, purpose="test") is not None
    assert two_factor.verify_code(user, code, purpose="test") is None


GOOD = {
    "label": "second",
    "network": "simulator",
    "api_key": "key-0002",
    "api_secret": "secret-0002",
    "passphrase": "pass-0002",
}
VERIFIED = Verification(permissions=("account:read", "futures:isolated:write"))


def test_adding_keys_with_2fa_on_needs_a_fresh_code(alice_2fa) -> None:
    user, device = alice_2fa
    client = Client()
    client.force_login(user)
    with mock.patch("accounts.views.verify_form_credentials", return_value=VERIFIED) as verify:
        missing = client.post("/accounts/exchange/new/", GOOD)
        assert missing.status_code == 200
        assert b"Authenticator code" in missing.content
        assert not verify.called  # nothing reaches the exchange without the code
        ok = client.post("/accounts/exchange/new/", {**GOOD, "otp_token": _code(device, 1)})
    assert ok.status_code == 302
    assert ExchangeAccount.objects.filter(owner=user, label="second").exists()


def test_changing_keys_with_2fa_on_needs_a_code_but_renaming_does_not(alice_2fa, make_account) -> None:
    user, device = alice_2fa
    account = make_account(user, label="main")
    client = Client()
    client.force_login(user)
    assert (
        client.post(f"/accounts/exchange/{account.pk}/edit/", {"label": "renamed", "network": "simulator"}).status_code
        == 302
    )
    with mock.patch("accounts.views.verify_form_credentials", return_value=VERIFIED) as verify:
        refused = client.post(
            f"/accounts/exchange/{account.pk}/edit/", {**GOOD, "label": "renamed", "otp_token": "000000"}
        )
        assert refused.status_code == 200
        assert not verify.called
    account.refresh_from_db()
    assert account.key_hint == "0001"


def test_turning_2fa_off_needs_the_password_and_a_code(alice_2fa) -> None:
    user, device = alice_2fa
    client = Client()
    client.force_login(user)
    bad = client.post("/accounts/two-factor/", {"action": "disable", "password": "nope", "otp_token": _code(device, 1)})
    assert bad.status_code == 200
    assert two_factor.is_enabled(user)
    ok = client.post(
        "/accounts/two-factor/", {"action": "disable", "password": PASSWORD, "otp_token": _code(device, 1)}
    )
    assert ok.status_code == 302
    assert not two_factor.is_enabled(user)


def test_users_without_2fa_log_in_with_the_password_alone(alice: User) -> None:
    response = _login(Client(), "alice", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == settings.LOGIN_REDIRECT_URL


# --- item 9: network change ---------------------------------------------------------------------------------------


def test_item9_moving_an_account_to_another_network_needs_its_keys_verified_there(alice: User, make_account) -> None:
    account = make_account(alice, label="main", network="simulator")
    client = Client()
    client.force_login(alice)
    with mock.patch("accounts.views.verify_form_credentials", return_value=VERIFIED) as verify:
        refused = client.post(f"/accounts/exchange/{account.pk}/edit/", {"label": "main", "network": "mainnet"})
        assert refused.status_code == 200
        assert b"another network" in refused.content
        assert not verify.called
        account.refresh_from_db()
        assert account.network == "simulator"
        moved = client.post(
            f"/accounts/exchange/{account.pk}/edit/",
            {**GOOD, "label": "main", "network": "mainnet"},
        )
        assert moved.status_code == 302
        assert verify.call_count == 1
        assert verify.call_args.args[0].cleaned_data["network"] == "mainnet"
    account.refresh_from_db()
    assert (account.network, account.key_hint) == ("mainnet", "0002")
