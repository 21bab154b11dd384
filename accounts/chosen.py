"""The account the user chose to look at: ``?account=<id>`` in the URL, remembered in the session, so dashboard,
positions, history and automations show the same account across pages and reloads. Owner-scoped: an id the user
does not own is never remembered (and gives no hint that it exists)."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import ExchangeAccount, User
from config.params import parse_id

SESSION_KEY = "axisor_account"


def _owned(user: User, account_id: int | None) -> bool:
    return account_id is not None and ExchangeAccount.objects.filter(pk=account_id, owner=user).exists()


def remember_account(request: HttpRequest, account_id: int) -> None:
    """Remember ``account_id`` (already checked to be the user's) for the session; no write when unchanged."""
    if request.session.get(SESSION_KEY) != account_id:
        request.session[SESSION_KEY] = account_id


def chosen_account_id(request: HttpRequest) -> int | None:
    """The account of ``?account=`` when the user owns it (remembered from now on), else the one remembered in the
    session if still theirs, else ``None`` (the page's default: the active account)."""
    user = request.user
    if not isinstance(user, User):
        return None
    from_url = parse_id(request.GET.get("account", ""))
    if _owned(user, from_url):
        assert from_url is not None
        remember_account(request, from_url)
        return from_url
    remembered = request.session.get(SESSION_KEY)
    if isinstance(remembered, int) and _owned(user, remembered):
        return remembered
    return None
