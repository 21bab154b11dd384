"""Re-encrypt every stored exchange credential under the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), run this command, then remove
the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.crypto import CredentialDecryptionError
from accounts.services import credentials_rotate_all


class Command(BaseCommand):
    help = "Re-encrypt every stored exchange credential under the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ANN401
        try:
            count = credentials_rotate_all()
        except CredentialDecryptionError as exc:
            raise CommandError(f"{exc} Rotation stopped; rows already rotated stay rotated.") from exc
        self.stdout.write(self.style.SUCCESS(f"Rotated {count} exchange account(s) to the first key."))
