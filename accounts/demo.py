"""The demo user of the embedded default: created once, its login kept in a git-ignored local file."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from django.conf import settings

from accounts.models import User

DEMO_USERNAME = "demo"


def demo_login_file() -> Path:
    return Path(settings.VAR_DIR) / "demo_login.json"


def demo_user_ensure() -> tuple[User, str]:
    """Return the demo user and its password, creating both on first run (password stored mode 0600)."""
    path = demo_login_file()
    password = ""
    if path.exists():
        password = str(json.loads(path.read_text()).get("password", ""))
    user = User.objects.filter(username=DEMO_USERNAME).first()
    if user is None or not password or not user.check_password(password):
        password = secrets.token_urlsafe(12)
        if user is None:
            user = User.objects.create_user(DEMO_USERNAME, password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"username": DEMO_USERNAME, "password": password}, fh)
    return user, password
