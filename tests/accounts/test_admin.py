"""The admin never offers secrets: no add form, no encrypted columns, staff see only their own accounts."""

from __future__ import annotations

from django.urls import reverse


def test_admin_has_no_add_and_no_encrypted_fields(client, alice, make_account):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    account = make_account(alice)
    client.force_login(alice)
    assert client.get(reverse("admin:accounts_exchangeaccount_add")).status_code == 403
    page = client.get(reverse("admin:accounts_exchangeaccount_change", args=[account.pk])).content.decode()
    assert "api_secret_encrypted" not in page
    assert account.api_secret_encrypted not in page
    assert "(encrypted)" in page


def test_staff_see_only_their_own_accounts_in_admin(client, alice, bob, make_account):
    from django.contrib.auth.models import Permission

    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(*Permission.objects.filter(codename__endswith="exchangeaccount"))
    make_account(alice, label="alice-main")
    bobs = make_account(bob, label="bob-main")
    client.force_login(alice)
    body = client.get(reverse("admin:accounts_exchangeaccount_changelist")).content.decode()
    assert "alice-main" in body
    assert "bob-main" not in body
    response = client.get(reverse("admin:accounts_exchangeaccount_change", args=[bobs.pk]))
    assert response.status_code in (302, 404)
