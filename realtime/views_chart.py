"""The dashboard chart's data: candles from the exchange (cached) and, for one owned account, the lines and markers
drawn over them (``realtime.chart``). Anonymous: 401 JSON; an account the user does not own: 404; a bad range:
400 (never a 500)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import User
from config.params import parse_id
from realtime.candles import CHART_RANGES, chart_candles
from realtime.chart import chart_levels, chart_markers
from realtime.snapshot import account_for_user


@require_GET
@never_cache
def api_chart(request: HttpRequest) -> HttpResponse:
    """``?account=<id>&range=1m|5m|1h|1d`` → ``{range, candles, candles_unavailable, levels, markers}``."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "unauthenticated"}, status=401)
    assert isinstance(request.user, User)
    resolution = request.GET.get("range", "1m")
    if resolution not in CHART_RANGES:
        return JsonResponse({"error": "bad_range", "ranges": list(CHART_RANGES)}, status=400)
    raw = request.GET.get("account", "")
    account_id = parse_id(raw)
    if raw and account_id is None:
        return JsonResponse({"error": "not_found"}, status=404)
    account = account_for_user(user=request.user, account_id=account_id)
    if account is None:
        return JsonResponse({"error": "not_found"}, status=404)
    from automations.services.management import preview_market

    candles = chart_candles(account.network, resolution)
    since = datetime.fromtimestamp(candles[0]["time"], UTC) if candles else datetime.now(UTC)
    return JsonResponse(
        {
            "range": resolution,
            "candles": candles or [],
            "candles_unavailable": candles is None,
            "levels": chart_levels(account, preview_market(account.network)),
            "markers": chart_markers(account, since),
        }
    )
