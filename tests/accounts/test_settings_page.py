"""Settings page: preferences (language, time zone, display currency), password change, help page and favicon."""

from __future__ import annotations

import pytest
from django.urls import reverse

from realtime import signals as realtime_signals


def test_settings_page_needs_login(client):
    response = client.get(reverse("accounts:settings"))
    assert response.status_code == 302


def test_language_and_time_zone_apply_to_every_page(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("accounts:settings"),
        {"form": "preferences", "language": "pt-br", "time_zone": "America/Sao_Paulo", "display_currency": "btc"},
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.language, alice.time_zone, alice.display_currency) == ("pt-br", "America/Sao_Paulo", "btc")
    assert response.cookies["django_language"].value == "pt-br"
    page = client.get(reverse("accounts:settings"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="pt-br">' in page
    assert 'data-currency="btc"' in page


def test_bad_preferences_are_all_reported(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("accounts:settings"),
        {"form": "preferences", "language": "xx", "time_zone": "Mars/Olympus", "display_currency": "gold"},
    )
    assert response.status_code == 200
    errors = response.context["preferences"].errors
    assert set(errors) == {"language", "time_zone", "display_currency"}
    alice.refresh_from_db()
    assert alice.language == ""


def test_password_change_keeps_this_session_and_closes_sockets(client, alice, monkeypatch):
    closed: list[tuple[int, str]] = []
    monkeypatch.setattr(realtime_signals, "publish_session_ended_on_commit", lambda uid, why: closed.append((uid, why)))
    alice.set_password("old-password-123")
    alice.save()
    closed.clear()
    client.force_login(alice)
    response = client.post(
        reverse("accounts:settings"),
        {
            "form": "password",
            "old_password": "old-password-123",
            "new_password1": "a-much-better-pass-42",
            "new_password2": "a-much-better-pass-42",
        },
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-much-better-pass-42")
    assert closed == [(alice.pk, "password_changed")]
    assert client.get(reverse("accounts:settings")).status_code == 200  # still signed in here


def test_wrong_old_password_and_mismatch_reported_together(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("accounts:settings"),
        {"form": "password", "old_password": "nope", "new_password1": "abc", "new_password2": "abd"},
    )
    assert response.status_code == 200
    assert {"old_password", "new_password2"} <= set(response.context["password"].errors)


def test_settings_links_two_factor(client, alice):
    client.force_login(alice)
    assert reverse("accounts:two-factor") in client.get(reverse("accounts:settings")).content.decode()


@pytest.mark.parametrize("anchor", ["paper", "margin-guard", "tpsl", "auto-entry", "rules"])
def test_help_page_sections(client, anchor):
    body = client.get(reverse("help")).content.decode()
    assert f'id="{anchor}"' in body
    assert "<title>Help · Axisor</title>" in body


def test_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")
