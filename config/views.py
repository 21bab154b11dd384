"""Project-level views: the home page and the liveness probe."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The landing page after login: the exchange accounts until the dashboard exists."""
    return redirect("accounts:list")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers HTTP. Readiness (database, broker, feed, workers) is a separate check."""
    return JsonResponse({"status": "ok"})
