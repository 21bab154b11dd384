"""Read queries of the automations app. Every one is scoped to the owner: another user's rows are never returned,
and a lookup by id of someone else's row raises ``Http404`` (no hint that it exists)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ExchangeAccount, User
from automations.models import AuditEntry, Automation, GlobalSwitch, TrackedTrade


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """Optional filters of the audit log; ``None`` (or empty) means "any"."""

    account_id: int | None = None
    automation_id: int | None = None
    kind: str | None = None
    outcome: str | None = None


def automation_list_for_user(*, user: User, account: ExchangeAccount | None = None) -> QuerySet[Automation]:
    """The user's automations (optionally of one of their accounts), with their account, by account then name."""
    queryset = Automation.objects.filter(account__owner=user).select_related("account")
    if account is not None:
        queryset = queryset.filter(account=account)
    return queryset.order_by("account__label", "account_id", "name", "id")


def automation_get_for_user(*, user: User, automation_id: int) -> Automation:
    """One of the user's automations (with its account); ``Http404`` for anyone else's."""
    return get_object_or_404(Automation.objects.select_related("account"), pk=automation_id, account__owner=user)


def accounts_with_automations_for_user(*, user: User) -> QuerySet[ExchangeAccount]:
    """The user's exchange accounts, each with ``automations`` prefetched (two queries in all)."""
    return (
        ExchangeAccount.objects.filter(owner=user)
        .order_by("-is_active", "label", "id")
        .prefetch_related(Prefetch("automations", queryset=Automation.objects.order_by("name", "id")))
    )


def tracked_trades_open_for_account(*, account: ExchangeAccount) -> QuerySet[TrackedTrade]:
    """The account's open and running trades Axisor knows about, whoever opened them (newest first)."""
    return TrackedTrade.objects.filter(
        account=account, state__in=(TrackedTrade.State.OPEN, TrackedTrade.State.RUNNING)
    ).order_by("-first_seen_at", "-id")


def global_switch_get() -> GlobalSwitch | None:
    """The system-wide kill switch row, or ``None`` when it was never set (= off)."""
    return GlobalSwitch.objects.filter(pk=1).first()


def audit_entries_for_user(*, user: User, filters: AuditFilters | None = None) -> QuerySet[AuditEntry]:
    """The user's audit entries, newest first, narrowed by ``filters``; account and automation come with each row.

    Filters naming another user's account or automation simply match nothing.
    """
    queryset = AuditEntry.objects.filter(account__owner=user).select_related("account", "automation")
    filters = filters or AuditFilters()
    if filters.account_id is not None:
        queryset = queryset.filter(account_id=filters.account_id)
    if filters.automation_id is not None:
        queryset = queryset.filter(automation_id=filters.automation_id)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.outcome:
        queryset = queryset.filter(outcome=filters.outcome)
    return queryset.order_by("-created_at", "-id")
