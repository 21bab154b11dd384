"""LN Markets v3 request signatures and Stream v1 authentication signatures (docs/protocol.md §3.2, §7.1).

Pure functions, no Django: used by the REST and Stream clients to sign, and by the simulator to verify.
Sign exactly the bytes that are sent: the compact JSON body, or the query string with its leading ``?``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from urllib.parse import quote

JSONScalar = str | int | float | bool | None


def rest_prehash(timestamp: str, method: str, path: str, data: str) -> str:
    """``timestamp + lowercase method + path + data`` where data is the body, ``?query`` or ``""``."""
    return f"{timestamp}{method.lower()}{path}{data}"


def hmac_b64(secret: str, message: str) -> str:
    """base64(HMAC-SHA256(secret as UTF-8, message as UTF-8)); the secret is *not* base64-decoded."""
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def rest_signature(secret: str, timestamp: str, method: str, path: str, data: str = "") -> str:
    """The ``lnm-access-signature`` header value for one REST v3 request."""
    return hmac_b64(secret, rest_prehash(timestamp, method, path, data))


def stream_signature(secret: str, timestamp: int | str, nonce: str) -> str:
    """The ``signature`` param of the Stream v1 ``authenticate`` call: HMAC over ``str(timestamp) + nonce``."""
    return hmac_b64(secret, f"{timestamp}{nonce}")


def verify(expected_b64: str, actual_b64: str) -> bool:
    """Constant-time comparison of two base64 signatures."""
    return hmac.compare_digest(expected_b64.encode("ascii", "replace"), actual_b64.encode("ascii", "replace"))


def encode_body(body: Mapping[str, object]) -> str:
    """Compact JSON as the SDKs send it (``separators=(",", ":")``); the same text is signed and sent."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def encode_query(params: Mapping[str, JSONScalar]) -> str:
    """``?a=1&b=x`` with ``None`` dropped and booleans as ``true``/``false``; ``""`` when nothing is left.

    Values are percent-encoded once here (``:`` → ``%3A``), and the caller puts this exact text in the URL so that
    no HTTP library re-encodes it after signing.
    """
    parts: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        parts.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "?" + "&".join(parts) if parts else ""
