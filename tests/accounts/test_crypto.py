"""Encryption at rest: round trip, wrong keys raise, rotation, and no plaintext in the database."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from accounts import crypto, services
from accounts.models import ExchangeAccount

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def test_round_trip(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    token = crypto.encrypt("s3cret-ünïcode")
    assert token != "s3cret-ünïcode"
    assert crypto.decrypt(token) == "s3cret-ünïcode"


def test_wrong_key_raises_and_never_returns_ciphertext(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    token = crypto.encrypt("the-secret")
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(crypto.CredentialDecryptionError, match="cannot be decrypted"):
        crypto.decrypt(token)


def test_corrupted_token_raises(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    with pytest.raises(crypto.CredentialDecryptionError):
        crypto.decrypt("not-a-fernet-token")


def test_missing_key_is_a_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        crypto.encrypt("x")


def test_malformed_key_error_does_not_echo_the_key(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-valid-fernet-key-but-secret-ish"]
    with pytest.raises(ImproperlyConfigured) as info:
        crypto.encrypt("x")
    assert "secret-ish" not in str(info.value)


def test_database_column_holds_no_plaintext(settings, alice, make_account):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    account = make_account(alice, api_key="PLAINKEY-123456", api_secret="PLAINSECRET-987", passphrase="PLAINPASS-555")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_exchangeaccount WHERE id = %s", [account.pk])
        raw = " ".join(str(v) for v in cursor.fetchone())
    assert "PLAINKEY-123456" not in raw
    assert "PLAINSECRET-987" not in raw
    assert "PLAINPASS-555" not in raw
    assert account.key_hint == "3456"


def test_rotation_re_encrypts_every_row_and_the_old_key_can_go(settings, alice, bob, make_account):
    # given rows encrypted under key A
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    a1 = make_account(alice, label="a1", api_key="alice-key-1", api_secret="alice-secret-1", passphrase="alice-pp-1")
    b1 = make_account(bob, label="b1", api_key="bob-key-1", api_secret="bob-secret-1", passphrase="bob-pp-1")
    old_fingerprint = ExchangeAccount.objects.get(pk=a1.pk).key_fingerprint
    # when B is added first and the command rotates
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    call_command("rotate_credentials")
    # then only B is needed
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    creds = services.credentials_for_signing(account_id=a1.pk)
    assert (creds.key, creds.secret, creds.passphrase) == ("alice-key-1", "alice-secret-1", "alice-pp-1")
    assert services.credentials_for_signing(account_id=b1.pk).secret == "bob-secret-1"
    rows = ExchangeAccount.objects.all()
    assert all(r.key_fingerprint == crypto.current_fingerprint() != old_fingerprint for r in rows)
    # and the old key alone no longer decrypts
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    with pytest.raises(crypto.CredentialDecryptionError):
        services.credentials_for_signing(account_id=a1.pk)


def test_rotation_with_an_undecryptable_row_fails_loudly(settings, alice, make_account):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    make_account(alice)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Rotation stopped"):
        call_command("rotate_credentials")


def test_credentials_repr_is_masked(settings, alice, make_account):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    account = make_account(alice, api_secret="VERY-SECRET-VALUE")
    creds = services.credentials_for_signing(account_id=account.pk)
    assert "VERY-SECRET-VALUE" not in repr(creds)
    assert "VERY-SECRET-VALUE" not in str(creds)


def test_a_row_in_hand_is_decrypted_without_a_read_and_only_for_its_own_account(
    settings, alice, bob, make_account, django_assert_num_queries
):
    from automations.exchange import credentials_provider, signing_from

    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    a1 = make_account(alice, label="a1", api_key="alice-key-1", api_secret="alice-secret-1", passphrase="alice-pp-1")
    b1 = make_account(bob, label="b1", api_key="bob-key-1", api_secret="bob-secret-1", passphrase="bob-pp-1")
    row = ExchangeAccount.objects.get(pk=a1.pk)
    with signing_from(row):
        with django_assert_num_queries(0):
            assert credentials_provider(a1.pk)().secret == "alice-secret-1"
        with django_assert_num_queries(1):  # another account's request in the same block reads its own row
            assert credentials_provider(b1.pk)().secret == "bob-secret-1"
    with django_assert_num_queries(1):  # outside the block: read at signing time, as always
        assert credentials_provider(a1.pk)().key == "alice-key-1"
