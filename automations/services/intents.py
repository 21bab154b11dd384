"""Ask for an order: the one way to create an ``OrderIntent`` (automations, the cockpit, the Telegram bot).

Nothing here talks to the exchange: the intent is written with its audit entry in one transaction and its execution
is queued after the commit; ``automations.services.execution`` sends it exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from accounts.models import ExchangeAccount
from automations.actions import ActionParams, ActionParamsError, Request, action_for
from automations.audit_text import say
from automations.models import AuditEntry, Automation, OrderIntent
from automations.publish import publish_automation_log_on_commit


def intent_of(request: Request, *, account_id: int, automation: Automation | None = None) -> OrderIntent:
    """The unsaved intent of ``request`` (parameters stored as the action's JSON)."""
    return OrderIntent(
        account_id=account_id,
        automation=automation,
        action=request.action.key,
        trade_id=request.trade_id,
        params=request.params.to_json(),
        protective=request.protective,
    )


def request(
    account: ExchangeAccount,
    action: str,
    params: Mapping[str, Any] | ActionParams,
    *,
    trade_id: str = "",
    origin: str,
    automation: Automation | None = None,
    client_id: str | None = None,
) -> OrderIntent:
    """Create and queue one order intent of ``account`` for ``action`` (``OrderIntent.Action`` value).

    ``params`` are validated by the action's model (``ActionParamsError`` names the bad field; nothing is written);
    ``trade_id`` is required for every action but ``open``; ``origin`` ("cockpit", "telegram", …) is stored in the
    parameters as ``source`` and in the audit entry. Protective (priority queue) unless it opens a trade.

    ``client_id`` (``ax-`` + 32 hex), when given, is the intent's ``clientId``: a form that carries one asks at most
    once however often it is submitted (a second ``request`` with it raises ``IntegrityError``, nothing written).
    """
    definition = action_for(action)
    data = params.model_dump() if isinstance(params, ActionParams) else dict(params)
    typed = definition.parse({**data, "source": origin})
    if definition.needs_trade and not trade_id:
        raise ActionParamsError("trade_id: required for this action")
    if not definition.needs_trade and trade_id:
        raise ActionParamsError("trade_id: not allowed for this action")
    req = Request(definition, typed, trade_id, protective=definition.needs_trade)
    from automations.tasks import order_intent_enqueue

    with transaction.atomic():
        intent = intent_of(req, account_id=account.pk, automation=automation)
        if client_id is not None:
            intent.client_id = client_id
        intent.save()
        said = (
            say("intent_requested_trade", action=action, trade=trade_id, origin=origin)
            if trade_id
            else say("intent_requested", action=action, origin=origin)
        )
        entry = AuditEntry.objects.create(
            account=account,
            automation=automation,
            intent=intent,
            kind=automation.kind if automation is not None else "",
            event=AuditEntry.Event.STATUS,
            outcome=AuditEntry.Outcome.INFO,
            message=said.english,
            inputs=said.inputs({"source": origin, "action": action, "client_id": intent.client_id}),
        )
        publish_automation_log_on_commit(entry.pk)
        intent_id, protective = intent.pk, intent.protective
        transaction.on_commit(lambda: order_intent_enqueue(intent_id, protective=protective))
    return intent
