"""Realtime pages (dashboard, positions) and the HTTP fallback: owner-scoped JSON snapshots for polling.

The JSON endpoints answer with the same ``Snapshot`` the socket sends (``{"type": "snapshot", "ts", "data"}``,
without ``seq``: polling has no stream to order), plus ``"sockets": "open" | "paused"`` (``realtime.ops``) so a
polling page knows when live sockets are back. Anonymous requests get 401 JSON (never a login redirect, so the
page can say the session ended); an account id the user does not own gets 404, the same as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Literal, TypedDict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.chosen import chosen_account_id
from accounts.models import User
from config.params import parse_id
from realtime import ops
from realtime.snapshot import Snapshot, build_snapshot
from realtime.snapshot_cache import fallback_snapshot

View = Callable[..., HttpResponse]


class FallbackSnapshot(TypedDict):
    """The body of the JSON snapshot endpoints."""

    type: Literal["snapshot"]
    ts: str
    sockets: ops.SocketsMode
    data: Snapshot


def _json_login_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "unauthenticated"}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


def _snapshot_response(user: User, account_id: int | None) -> JsonResponse:
    """The snapshot from its shared parts (``realtime.snapshot_cache``); 404 for an account the user does not own
    (the same answer as one that does not exist)."""
    data, sockets = fallback_snapshot(user=user, account_id=account_id)
    if account_id is not None and (data["account"] is None or data["account"]["id"] != account_id):
        return JsonResponse({"error": "not_found"}, status=404)
    body: FallbackSnapshot = {"type": "snapshot", "ts": timezone.now().isoformat(), "sockets": sockets, "data": data}
    return JsonResponse(body)


@require_GET
@never_cache
@_json_login_required
def api_snapshot(request: HttpRequest) -> HttpResponse:
    """The snapshot of the user's active account (or of ``?account=<id>`` when the user owns it)."""
    assert isinstance(request.user, User)
    raw = request.GET.get("account")
    if raw is None or raw == "":
        return _snapshot_response(request.user, None)
    account_id = parse_id(raw)
    if account_id is None:
        return JsonResponse({"error": "not_found"}, status=404)
    chosen_account_id(request)  # an owned account switched to on the live page is remembered for the session
    return _snapshot_response(request.user, account_id)


@require_GET
@never_cache
@_json_login_required
def api_account_snapshot(request: HttpRequest, account_id: int) -> HttpResponse:
    """The snapshot of one owned account; 404 for anyone else's."""
    assert isinstance(request.user, User)
    return _snapshot_response(request.user, account_id)


def _page(request: HttpRequest, template: str) -> HttpResponse:
    assert isinstance(request.user, User)
    account_id = chosen_account_id(request)  # ?account= (remembered), else the session's choice
    data, _rows = build_snapshot(user=request.user, account_id=account_id)
    if account_id is not None and data["account"] is None:
        data, _rows = build_snapshot(user=request.user, account_id=None)
    return render(request, template, {"snap": data})


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard: cards, chart, positions, latest audit entries; live over the socket, polled without it."""
    return _page(request, "realtime/dashboard.html")


@login_required
def positions(request: HttpRequest) -> HttpResponse:
    """The positions table of the shown account, live like the dashboard."""
    return _page(request, "realtime/positions.html")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def operations(request: HttpRequest) -> HttpResponse:
    """Staff only: pause or resume live dashboard sockets (``realtime.ops``); everyone else gets 403."""
    user = request.user
    assert isinstance(user, User)
    if not user.is_staff:
        raise PermissionDenied
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "pause":
            ops.sockets_pause(by=user)
            messages.success(request, _("Live sockets paused: every dashboard now polls over HTTP."))
        elif action == "resume":
            ops.sockets_resume(by=user)
            messages.success(request, _("Live sockets resumed: dashboards reconnect on their next poll."))
        else:
            messages.error(request, _("Nothing changed: the action must be pause or resume."))
        return redirect("realtime:ops")
    return render(request, "realtime/ops.html", {"sockets": ops.sockets_state()})
