"""The cockpit's trade actions (thin): a confirmation page for each (GET), then the order intent (POST).
Another user's trade, or one no longer running, is a 404; a bad value is shown on the form (never a 500)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade
from realtime import trade_actions
from realtime.forms import FORMS, INTENT_ACTION
from realtime.market import market_state

TITLES = {
    "close": gettext_lazy("Close this trade at market?"),
    "stoploss": gettext_lazy("Set the stop-loss"),
    "takeprofit": gettext_lazy("Set the take-profit"),
    "add-margin": gettext_lazy("Add margin"),
}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _positions_url(account_id: int) -> str:
    return f"{reverse('realtime:positions')}?account={account_id}"


def _last(network: str) -> Decimal | None:
    last = market_state(network)["last"]
    return Decimal(last) if last else None


def _describe(trade: TrackedTrade) -> str:
    side = _("long") if trade.side == "buy" else _("short")
    return _("your %(side)s of %(quantity)s USD from %(entry)s") % {
        "side": side,
        "quantity": trade.quantity,
        "entry": trade.entry_price,
    }


@login_required
@require_http_methods(["GET", "POST"])
def trade_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in FORMS:
        raise Http404
    trade = trade_actions.running_trade_for(_user(request), pk)
    if trade is None:
        raise Http404
    last = _last(trade.account.network)
    form_class = FORMS[action]
    if request.method == "POST":
        form = form_class(request.POST, trade=trade, last=last)
        if form.is_valid():
            intent = trade_actions.ask(
                trade.account,
                INTENT_ACTION[action],
                form.params(),
                trade_id=trade.trade_id,
                client_id=form.cleaned_data["client_id"],
            )
            what = _describe(trade)
            if intent is None:
                messages.info(request, _("Already asked for %(trade)s: nothing sent twice.") % {"trade": what})
            else:
                messages.success(
                    request,
                    _("Asked for %(trade)s: the exchange's answer shows in the audit log and on this page.")
                    % {"trade": what},
                )
            return redirect(_positions_url(trade.account_id))
    else:
        form = form_class(initial={"client_id": trade_actions.fresh_client_id()}, trade=trade, last=last)
    context = {"form": form, "trade": trade, "action": action, "title": TITLES[action], "last": last}
    return render(request, "realtime/trade_action.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def close_all(request: HttpRequest, account_id: int) -> HttpResponse:
    """Close every running trade of one account: one order intent each, from one confirmation."""
    account = ExchangeAccount.objects.filter(pk=account_id, owner=_user(request)).first()
    if account is None:
        raise Http404
    trades = list(TrackedTrade.objects.filter(account=account, state=TrackedTrade.State.RUNNING).order_by("pk"))
    if request.method == "POST":
        asked = 0
        for trade in trades:
            client_id = request.POST.get(f"client_id_{trade.pk}", "")
            if not trade_actions.CLIENT_ID.fullmatch(client_id):
                continue  # a trade that was not on the confirmed page is not closed
            if trade_actions.ask(account, "close", {}, trade_id=trade.trade_id, client_id=client_id) is not None:
                asked += 1
        messages.success(request, _("Asked to close %(count)s trade(s) at market.") % {"count": asked})
        return redirect(_positions_url(account.pk))
    rows = [(trade, trade_actions.fresh_client_id()) for trade in trades]
    return render(request, "realtime/close_all.html", {"account": account, "rows": rows})
