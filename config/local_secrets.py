"""Secrets for the embedded default (no environment set): generated once into a git-ignored file.

A production deployment (``DATABASE_URL`` or ``REDIS_URL`` set) never reaches this module: there, a missing
``SECRET_KEY`` or ``FIELD_ENCRYPTION_KEYS`` is an ``ImproperlyConfigured`` error at start-up.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from pathlib import Path

from cryptography.fernet import Fernet


def load_or_create(path: Path) -> dict[str, str]:
    """Return the local secrets stored at ``path``, creating the file (mode 0600) on first use."""
    if path.exists():
        data = json.loads(path.read_text())
        if isinstance(data, dict) and {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS"} <= data.keys():
            return {str(k): str(v) for k, v in data.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    warnings.warn(
        f"Generated a local SECRET_KEY and credential encryption key in {path}. Keep this file: without it the "
        "stored exchange credentials cannot be decrypted. Set SECRET_KEY and FIELD_ENCRYPTION_KEYS in the "
        "environment for a production deployment.",
        stacklevel=2,
    )
    return data
