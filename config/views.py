"""Project-level views: the home page (the realtime dashboard) and the liveness probe."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from realtime.views import dashboard


def home(request: HttpRequest) -> HttpResponse:
    """The landing page after login: the realtime dashboard (login required; see ``realtime.views.dashboard``)."""
    return dashboard(request)


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers HTTP. Readiness (database, broker, feed, workers) is a separate check."""
    return JsonResponse({"status": "ok"})
