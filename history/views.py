"""History and performance pages (owner-scoped), the CSV export and the "sync now" button. Thin: the queries are
in ``history.selectors``, the exchange work in ``history.services``."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.chosen import chosen_account_id
from accounts.models import ExchangeAccount, User
from history import charts, selectors
from history.forms import HistoryFilterForm
from history.models import ClosedTrade

PAGE_SIZE = 50
CSV_COLUMNS = (
    "account", "trade_id", "side", "quantity_usd", "leverage", "entry_price", "exit_price", "pl_sats",
    "opening_fee_sats", "closing_fee_sats", "funding_fees_sats", "net_pl_sats", "net_pl_percent", "opened_at",
    "closed_at", "closed_by", "automation",
)  # fmt: skip


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _filters(request: HttpRequest) -> tuple[HistoryFilterForm, dict[str, Any]]:
    """The cleaned filters; without an ``account`` parameter, the account chosen on another page (the session's),
    and an account picked here is remembered ("All accounts" is a choice of this page only)."""
    data = request.GET.copy()
    chosen = chosen_account_id(request)
    if "account" not in data and chosen is not None:
        data["account"] = str(chosen)
    form = HistoryFilterForm(data or None, user=_user(request))
    cleaned = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return form, cleaned


def _query_without_page(request: HttpRequest) -> str:
    query: QueryDict = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
@require_GET
def history_list(request: HttpRequest) -> HttpResponse:
    """Every closed or canceled trade of the user's accounts, filtered and paginated."""
    form, filters = _filters(request)
    rows = selectors.closed_trades(_user(request), filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "totals": selectors.totals(rows),
        "query": _query_without_page(request),
        "has_accounts": ExchangeAccount.objects.filter(owner=_user(request)).exists(),
    }
    return render(request, "history/list.html", context)


@login_required
@require_GET
def history_csv(request: HttpRequest) -> HttpResponse:
    """The filtered history as CSV (all pages), newest first."""
    _form, filters = _filters(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="axisor-history-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in selectors.closed_trades(_user(request), filters).iterator():
        writer.writerow(_csv_row(row))
    return response


def _csv_row(row: ClosedTrade) -> list[object]:
    return [
        _safe(row.account.label), row.trade_id, row.side, row.quantity, row.leverage, row.entry_price or "",
        row.exit_price or "", row.pl, row.opening_fee, row.closing_fee, row.funding_fees, row.net_pl,
        row.pl_percent if row.pl_percent is not None else "", row.opened_at.isoformat() if row.opened_at else "",
        row.closed_at.isoformat(), row.closed_by, _safe(row.automation_name),
    ]  # fmt: skip


def _safe(text: str) -> str:
    """A user-typed cell that a spreadsheet would run as a formula is quoted (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@login_required
@require_POST
def history_sync_now(request: HttpRequest) -> HttpResponse:
    """Fetch the closed trades of the user's accounts from the exchange now (GETs only)."""
    from accounts.crypto import CredentialDecryptionError
    from history.services import history_sync
    from lnmarkets.exceptions import LNMarketsError

    new = 0
    failed: list[str] = []
    for account in ExchangeAccount.objects.filter(owner=_user(request), is_enabled=True):
        try:
            new += history_sync(account_id=account.pk).new
        except (LNMarketsError, CredentialDecryptionError):
            failed.append(account.label)
    if failed:
        messages.error(
            request,
            _("The exchange did not answer for %(accounts)s: try again in a minute.") % {"accounts": ", ".join(failed)},
        )
    else:
        messages.success(request, _("History is up to date: %(count)s new trade(s).") % {"count": new})
    return redirect("history:list")


@login_required
@require_GET
def performance(request: HttpRequest) -> HttpResponse:
    """Realised PnL per day, balance over time, win rate, fees and funding, and what each automation did."""
    user = _user(request)
    form, filters = _filters(request)
    account = filters.get("account")
    rows = selectors.closed_trades(user, {"account": account})
    per_day = selectors.pnl_per_day(rows)
    balance = selectors.balance_series(user, account)
    context = {
        "form": form,
        "account": account,
        "totals": selectors.totals(rows),
        "per_day": per_day,
        "bars": charts.bars(per_day),
        "zero_y": charts.zero_y(per_day),
        "best_day": max(per_day, key=lambda d: d[1]) if any(v > 0 for _, v in per_day) else None,
        "worst_day": min(per_day, key=lambda d: d[1]) if any(v < 0 for _, v in per_day) else None,
        "balance": balance,
        "balance_points": charts.polyline(balance),
        "balance_last": balance[-1][1] if balance else None,
        "balance_first": balance[0][1] if balance else None,
        "chart": {"width": charts.WIDTH, "height": charts.HEIGHT},
        "automations": selectors.automation_summaries(user, account),
    }
    return render(request, "history/performance.html", context)
