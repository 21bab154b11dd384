"""Site-wide middleware of our own."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_cache_control

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5


def _pool_exhausted(exc: BaseException) -> bool:
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover - psycopg_pool is a requirement
        return False
    return isinstance(exc, OperationalError) and isinstance(exc.__cause__, PoolTimeout)


class OverloadMiddleware:
    """Answer 503 with ``Retry-After`` when no database connection could be had in time (the pool is exhausted:
    the server is overloaded), instead of a 500: nothing is wrong with the request, and the page's poller simply
    tries again later. JSON for the JSON endpoints, plain text otherwise."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _pool_exhausted(exception):
            return None
        logger.warning("database pool exhausted: 503 for %s", request.path)
        response: HttpResponse
        if request.path.startswith("/realtime/api/"):
            response = JsonResponse({"error": "busy", "retry_after": RETRY_AFTER_S}, status=503)
        else:
            response = HttpResponse("The server is busy; try again in a few seconds.", status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store, private`` on every response to a logged-in user that does not set its own, so
    balances, positions and account pages do not stay in the browser's cache after logout (issue #12)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, no_cache=True, must_revalidate=True, private=True)
        return response
