"""Read queries of the accounts app. Every one is scoped to the owner."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ExchangeAccount, User


def exchange_account_list_for_user(*, user: User) -> QuerySet[ExchangeAccount]:
    """The user's exchange accounts, active first."""
    return ExchangeAccount.objects.filter(owner=user).order_by("-is_active", "label", "id")


def exchange_account_get_for_user(*, user: User, account_id: int) -> ExchangeAccount:
    """One of the user's accounts; raises ``Http404`` for anyone else's (no hint that it exists)."""
    return get_object_or_404(ExchangeAccount, pk=account_id, owner=user)


def exchange_account_active_for_user(*, user: User) -> ExchangeAccount | None:
    """The account shown on the dashboard, or ``None`` when the user has none."""
    return ExchangeAccount.objects.filter(owner=user, is_active=True).first()
