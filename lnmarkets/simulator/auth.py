"""REST v3 request authentication (§3): the four ``lnm-access-*`` headers, a timestamp window, HMAC, scopes."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from lnmarkets.signing import rest_signature, stream_signature, verify
from lnmarkets.simulator.errors import ApiError
from lnmarkets.simulator.trades import ApiKey

HEADERS = ("lnm-access-key", "lnm-access-passphrase", "lnm-access-timestamp", "lnm-access-signature")


def signed_data(raw_target: str, body: str) -> tuple[str, str]:
    """(path, data) that the client signed: ``data`` is the body if any, else ``?query`` (as sent), else ``""``."""
    path, sep, query = raw_target.partition("?")
    if body:
        return path, body
    return path, (sep + query) if query else ""


def _check_key(
    keys: Mapping[str, ApiKey], key: str, passphrase: str, timestamp: str, now_ms: int, window_ms: int
) -> ApiKey:
    api_key = keys.get(key)
    if api_key is None:
        raise ApiError("invalid_key", "Unknown API key")
    if not hmac.compare_digest(passphrase.encode(), api_key.passphrase.encode()):
        raise ApiError("invalid_passphrase", "Wrong passphrase for this API key")
    if not timestamp.isdigit() or len(timestamp) > 16:
        raise ApiError("invalid_timestamp", "The timestamp must be Unix time in milliseconds")
    if abs(now_ms - int(timestamp)) > window_ms:
        raise ApiError("invalid_timestamp", f"The timestamp is more than {window_ms // 1000} s away from server time")
    return api_key


def authenticate_rest(
    keys: Mapping[str, ApiKey],
    headers: Mapping[str, str],
    method: str,
    raw_target: str,
    body: str,
    now_ms: int,
    window_ms: int,
) -> ApiKey:
    """The API key of a correctly signed request, or an ``ApiError`` (401)."""
    values = [headers.get(name) for name in HEADERS]
    if any(not value for value in values):
        raise ApiError("missing_credentials", "Missing authentication headers")
    key, passphrase, timestamp, signature = (str(value) for value in values)
    api_key = _check_key(keys, key, passphrase, timestamp, now_ms, window_ms)
    path, data = signed_data(raw_target, body)
    if not verify(rest_signature(api_key.secret, timestamp, method, path, data), signature):
        raise ApiError("invalid_signature", "Signature is not valid")
    return api_key


def authenticate_stream(
    keys: Mapping[str, ApiKey],
    key: str,
    passphrase: str,
    timestamp: int,
    nonce: str,
    signature: str,
    now_ms: int,
    window_ms: int,
) -> ApiKey:
    """The API key of a Stream ``authenticate`` call (HMAC over ``timestamp + nonce``), or an ``ApiError``."""
    api_key = _check_key(keys, key, passphrase, str(timestamp), now_ms, window_ms)
    if not verify(stream_signature(api_key.secret, timestamp, nonce), signature):
        raise ApiError("invalid_signature", "Signature is not valid")
    return api_key


def require_scope(api_key: ApiKey, scope: str) -> None:
    if scope not in api_key.scopes:
        raise ApiError("missing_scope", f"This API key lacks the {scope} permission")
