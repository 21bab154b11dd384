"""Error type of the simulator and the (invented, [U]) codes and messages it answers with.

LN Markets documents only ``{"code","message"}`` bodies and a few codes (§8.2); every code/message below that is not
in that list is the simulator's choice. Change them by editing ``ERRORS`` (module attribute) before the server starts.
"""

from __future__ import annotations

ERRORS: dict[str, tuple[int, str]] = {
    # key: (HTTP status, code). Messages are given at the raise site.
    "bad_request": (400, "BAD_REQUEST"),
    "insufficient_funds": (400, "INSUFFICIENT_FUNDS"),
    "missing_credentials": (401, "MISSING_CREDENTIALS"),
    "invalid_key": (401, "INVALID_API_KEY"),
    "invalid_passphrase": (401, "INVALID_PASSPHRASE"),
    "invalid_timestamp": (401, "INVALID_TIMESTAMP"),
    "invalid_signature": (401, "INVALID_SIGNATURE"),
    "missing_scope": (403, "FORBIDDEN"),
    "not_found": (404, "NOT_FOUND"),
    "method_not_allowed": (405, "METHOD_NOT_ALLOWED"),
    "rate_limited": (429, "TOO_MANY_REQUESTS"),
    "internal": (500, "INTERNAL_SERVER_ERROR"),
    "bad_gateway": (502, "BAD_GATEWAY"),
    "unavailable": (503, "SERVICE_UNAVAILABLE"),
    "gateway_timeout": (504, "GATEWAY_TIMEOUT"),
}

STATUS_KIND: dict[int, str] = {
    400: "bad_request",  # the exchange refuses the order (tests: an Auto Entry's open refused)
    429: "rate_limited",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}

STATUS_MESSAGES: dict[int, str] = {
    400: "The order was refused",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Trading engine is temporarily unavailable",
    504: "Gateway timeout",
}


class ApiError(Exception):
    """An error answered to the client as ``status`` + ``{"code","message"}``."""

    def __init__(self, kind: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status, self.code = ERRORS[kind]
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def bad_request(message: str) -> ApiError:
    return ApiError("bad_request", message)


def error_for_status(status: int, retry_after: int | None = None) -> ApiError:
    """The error an injected ``status`` fault answers with."""
    kind = STATUS_KIND.get(status)
    if kind is None:
        raise ValueError(f"unsupported fault status {status}")
    return ApiError(kind, STATUS_MESSAGES[status], retry_after=retry_after)
