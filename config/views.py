"""Project-level views: the home page (the realtime dashboard), liveness, readiness, metrics, the admin login."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from config.client_ip import is_direct_loopback
from config.metrics import render as render_metrics
from config.params import safe_redirect_target
from config.readiness import readiness
from realtime.views import dashboard


def home(request: HttpRequest) -> HttpResponse:
    """The landing page after login: the realtime dashboard (login required; see ``realtime.views.dashboard``)."""
    return dashboard(request)


@require_GET
def help_page(request: HttpRequest) -> HttpResponse:
    """Each automation in plain words with a worked example, LN Markets' rules, and what PAPER means."""
    return render(request, "help.html")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: send them to the icon."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers HTTP. Readiness (database, broker, feed, workers) is a separate check."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, broker, market feed (tick age) and workers (heartbeat); 503 when any is down."""
    ready, checks = readiness()
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: with ``METRICS_TOKEN`` set, for ``Authorization: Bearer <token>``; without, only for a
    client on this machine (not through a proxy)."""
    token: str = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not constant_time_compare(given, f"Bearer {token}"):
            return HttpResponse("metrics need the bearer token\n", status=401, content_type="text/plain")
    elif not is_direct_loopback(request):
        return HttpResponse("metrics are served to this machine only (set METRICS_TOKEN)\n", status=403)
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own login would skip the second factor: send it to the site's login instead."""
    target = safe_redirect_target(request.GET.get("next"), host=request.get_host(), require_https=request.is_secure())
    login = reverse("accounts:login")
    return HttpResponseRedirect(f"{login}?{urlencode({'next': target})}" if target else login)
