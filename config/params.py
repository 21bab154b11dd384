"""Parsing untrusted request parameters: never a 500, whatever the client sends."""

from __future__ import annotations

import re
import unicodedata

from django.utils.http import url_has_allowed_host_and_scheme

# ASCII digits only: str.isdigit() also accepts "²" or "١", which int() refuses or reads unexpectedly.
_ID_RE = re.compile(r"[0-9]{1,18}")
MAX_ID = 2**63 - 1  # the largest BigAutoField value on PostgreSQL and SQLite
MAX_REDIRECT_LENGTH = 2000


def parse_id(raw: object) -> int | None:
    """A database id from a query or form parameter, or ``None`` for anything that is not one (empty, signs,
    non-ASCII digits, more digits than a 64-bit id has, zero)."""
    if not isinstance(raw, str) or not _ID_RE.fullmatch(raw):
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def safe_redirect_target(raw: object, *, host: str, require_https: bool) -> str | None:
    """``raw`` when it is a URL on this site that is safe to redirect to, else ``None``: another host, another scheme,
    control characters (a newline would split the Location header) or more than ``MAX_REDIRECT_LENGTH``."""
    if not isinstance(raw, str) or not raw or len(raw) > MAX_REDIRECT_LENGTH:
        return None
    if any(unicodedata.category(c)[0] == "C" for c in raw):
        return None
    if not url_has_allowed_host_and_scheme(raw, allowed_hosts={host}, require_https=require_https):
        return None
    return raw
