"""The daily summary: per account, balance, realised PnL and fees of the trades closed in the last 24 h, and what
the automations did. Sent once per user and UTC date (the date is in the idempotency key)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from accounts.models import ExchangeAccount
from automations.models import AuditEntry, TrackedTrade
from notifications.derive import notifications_create, owner_language
from notifications.models import Channel, Event


def summary_text(user_id: int, *, now: datetime) -> str:
    since = now - timedelta(hours=24)
    lines = [_("Daily summary (%(date)s UTC)") % {"date": f"{now:%Y-%m-%d}"}]
    for account in ExchangeAccount.objects.filter(owner_id=user_id).order_by("label"):
        closed = TrackedTrade.objects.filter(account=account, closed_at__gte=since, state=TrackedTrade.State.CLOSED)
        totals = closed.aggregate(pnl=Coalesce(Sum("pl"), 0), fees=Coalesce(Sum("opening_fee"), 0), n=Count("id"))
        acted = AuditEntry.objects.filter(
            account=account,
            created_at__gte=since,
            event=AuditEntry.Event.RECONCILE,
            outcome=AuditEntry.Outcome.OK,
            automation__isnull=False,
        ).count()
        balance = "—" if account.balance is None else _("%(n)s sats") % {"n": account.balance}
        lines.append(
            _(
                "%(account)s: balance %(balance)s; %(closed)s trade(s) closed, realised PnL %(pnl)s sats, opening fees "
                "%(fees)s sats; automations acted %(acted)s time(s)."
            )
            % {
                "account": account.label,
                "balance": balance,
                "closed": totals["n"],
                "pnl": totals["pnl"],
                "fees": totals["fees"],
                "acted": acted,
            }
        )
    return "\n".join(lines)


def daily_summaries_send(*, now: datetime) -> int:
    """Send today's summary to every user who wants it, once the configured UTC hour has come."""
    if now.hour < settings.NOTIFY_DAILY_SUMMARY_HOUR:
        return 0
    user_ids = {
        owner_id
        for owner_id, events in Channel.objects.filter(is_enabled=True).values_list("owner_id", "events")
        if Event.DAILY_SUMMARY in (events or [])
    }
    created = 0
    for user_id in sorted(user_ids):
        with owner_language(user_id):
            text = summary_text(user_id, now=now)
        created += len(
            notifications_create(
                owner_id=user_id,
                event=Event.DAILY_SUMMARY,
                title=text.splitlines()[0],
                body=text,
                source=f"{user_id}:{now:%Y-%m-%d}",
            )
        )
    return created
