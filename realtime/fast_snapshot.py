"""The polling fallback's JSON snapshot without Django's ASGI request handler (issue #14, docs/capacity.md).

Django's ASGI handler runs every request's synchronous middleware and view on *one* thread per process
(``thread_sensitive``), hopping to it and back, with the whole middleware stack; for 2,000 pages polling every 5 s
that thread was the bottleneck (about 190 polls/s on 2 cores against the 400 asked). This ASGI wrapper answers
``GET /realtime/api/snapshot/`` itself, on a thread of the pool, with **the same view**
(``realtime.views.api_snapshot``) behind **the same middleware classes** that matter for it, composed in
``settings.MIDDLEWARE``'s order: host check, session, language, authentication, the user's preferences and every
security header (``FAST_PATH_MIDDLEWARE``). What it leaves out (``SKIPPED``) does nothing for a GET of this JSON:
static files, CSRF (no unsafe method), second-factor device lookup (a session is authenticated only after its code),
messages, and the login throttle's lockout page. A database pool that is exhausted is a 503, as
``OverloadMiddleware`` answers. Every other request, and this path with any other method, goes to Django as before.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.module_loading import import_string

from config.middleware import OverloadMiddleware

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]
Handler = Callable[[HttpRequest], Any]  # Django's own wrappers are typed for sync and async responses

FAST_PATH_MIDDLEWARE = frozenset(
    {
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.locale.LocaleMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "accounts.preferences.UserPreferencesMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        "csp.middleware.CSPMiddleware",
        "config.middleware.NoStoreMiddleware",
    }
)
# Left out, each for the reason in the module docstring (a test keeps this list and settings.MIDDLEWARE in step).
SKIPPED = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django_otp.middleware.OTPMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "config.middleware.OverloadMiddleware",  # its one hook, process_exception, is applied around the view
        "axes.middleware.AxesMiddleware",
    }
)


def _view(request: HttpRequest) -> HttpResponse:
    from realtime.views import api_snapshot

    try:
        return api_snapshot(request)
    except Exception as exc:
        busy = OverloadMiddleware(api_snapshot).process_exception(request, exc)
        if busy is None:
            raise
        return busy


def _chain() -> Handler:
    """The view behind the kept middleware, innermost last as Django builds it; every layer turns an exception into
    the response Django would give (``convert_exception_to_response``)."""
    handler: Handler = convert_exception_to_response(_view)
    for path in reversed([p for p in settings.MIDDLEWARE if p in FAST_PATH_MIDDLEWARE]):
        handler = convert_exception_to_response(import_string(path)(handler))
    return handler


class SnapshotFastPath:
    """ASGI: ``GET`` of the snapshot endpoint answered here; everything else passed to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._path: str | None = None
        self._handler: Handler | None = None

    def _is_ours(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope.get("method") != "GET":
            return False
        if self._path is None:
            self._path = reverse("realtime:api-snapshot")
        return bool(scope.get("path") == self._path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_ours(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        response = await sync_to_async(self._respond, thread_sensitive=False)(scope, body)
        await _send(send, response)

    def _respond(self, scope: Scope, body: bytes) -> HttpResponse:
        if self._handler is None:
            self._handler = _chain()
        close_old_connections()  # as Django's request_started does
        try:
            response: HttpResponse = self._handler(ASGIRequest(scope, io.BytesIO(body)))
        except BaseException:
            close_old_connections()
            raise
        # request_finished (closing old connections, caches, the urlconf), here: this thread holds the database
        # connection; the body is already bytes.
        response.close()
        return response


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, response: HttpResponse) -> None:
    """The (closed) response as Django's ASGI handler sends it: its headers, then each cookie as a ``Set-Cookie``."""
    headers = [(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()]
    headers += [(b"Set-Cookie", c.output(header="").strip().encode("ascii")) for c in response.cookies.values()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
