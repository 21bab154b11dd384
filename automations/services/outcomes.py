"""Outcomes told truthfully (#15): once an order intent is final, the decision that asked for it shows that final
outcome (never "pending" for ever), and an automation whose order the exchange refused says so on its row with
what happens next; an Auto Entry that cannot afford its entry says so too.

``intents_settled`` runs on every terminal transition of an intent (``intent_machine.transition``, or the batch
that settles several closes at once), in the same transaction as the transition when there is one; it is idempotent
(conditional updates only)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Case, F, Q, Value, When

from automations.decisions import Decision, Skip
from automations.models import AuditEntry, Automation, OrderIntent
from automations.outcome_phrases import CANNOT_AFFORD, OPEN_REFUSED, ORDER_REFUSED
from automations.services.compiled_update import compiled_update

_NOTES = (ORDER_REFUSED, CANNOT_AFFORD)


def intents_settled(intents: Sequence[OrderIntent]) -> None:
    """Each of ``intents`` reached RECONCILED or REJECTED: its decision entries take the final outcome; a refused
    order of an automation is told on the automation's row (a refused open stops the Auto Entry: ERROR, never
    COMPLETED). The decisions of several intents with one outcome are told in one statement (a batch's closes)."""
    settled = [intent for intent in intents if intent.state in OrderIntent.TERMINAL]
    for done in (True, False):
        ids = [i.pk for i in settled if (i.state == OrderIntent.State.RECONCILED) is done]
        final = AuditEntry.Outcome.OK if done else AuditEntry.Outcome.REJECTED
        if ids:
            match = {"intent_id": ids[0] if len(ids) == 1 else ids}
            pending = {"event": AuditEntry.Event.DECISION, "outcome": AuditEntry.Outcome.PENDING}
            compiled_update(AuditEntry, where={**match, **pending}, values={"outcome": final})
    for intent in settled:
        _automation_told(intent)


def _automation_told(intent: OrderIntent) -> None:
    if intent.automation_id is None:
        return
    done = intent.state == OrderIntent.State.RECONCILED
    automation = Automation.objects.filter(pk=intent.automation_id)
    if done:
        if _may_say_refused(intent):
            automation.filter(status_message=ORDER_REFUSED).update(status_message="")
    elif intent.action == OrderIntent.Action.OPEN:
        automation.filter(status__in=[Automation.Status.ACTIVE, Automation.Status.COMPLETED]).update(
            status=Automation.Status.ERROR, status_message=OPEN_REFUSED
        )
    else:
        automation.filter(status=Automation.Status.ACTIVE).update(status_message=ORDER_REFUSED)


def _may_say_refused(intent: OrderIntent) -> bool:
    """Whether the automation's row may carry the "order refused" note that a done order clears: always, unless
    the row read with the intent moments ago (a delivery reads it) said otherwise. A refusal written since that read
    is then left on the row until the automation's next order settles (issue #14: one statement less per close)."""
    field = OrderIntent._meta.get_field("automation")
    if not field.is_cached(intent):
        return True
    automation = field.get_cached_value(intent)
    return not isinstance(automation, Automation) or automation.status_message == ORDER_REFUSED


def evaluation_note(decisions: Sequence[Decision]) -> Case:
    """The ``status_message`` update of one evaluation: "cannot afford" while an entry is skipped for the balance;
    cleared when the next evaluation no longer says so; any other message kept."""
    short = any(isinstance(d, Skip) and d.code == "insufficient_balance" for d in decisions)
    if short:
        return Case(When(Q(status_message="") | Q(status_message__in=_NOTES), then=Value(CANNOT_AFFORD)),
                    default=F("status_message"))  # fmt: skip
    return Case(When(status_message=CANNOT_AFFORD, then=Value("")), default=F("status_message"))
