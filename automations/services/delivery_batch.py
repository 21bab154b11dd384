"""Several order intents delivered by one task, side by side (issue #14: the crash tick; docs/capacity.md).

A batch changes how the work reaches a worker and how many statements it takes, never what is sent. Its intents are
leased and read together; the ones that may be claimed together (``execution.may_claim_together``: a crash tick's
closes) are claimed in one statement and their 2xx answers settled in one transaction; every other intent goes
through ``execution.order_intent_advance`` exactly as its own task would take it. Each row of each statement is that
intent's own compare-and-set (docs/exactly-once.md, "Batches"), so a batch redelivered after its worker died, or an
intent delivered by a batch and by its own task at once, still sends once; the fault battery runs its kill
scenarios through batches too.

What a batch saves: one broker message, one hand-over to a worker child, one task set-up and most statements for
several intents, and the waits on the exchange (tens to hundreds of milliseconds per POST at the real one) overlap
in threads instead of holding a worker child each. Threads are used only outside a transaction (others would not see
its writes) and with a connection pool behind them (``settings.DELIVERY_THREADS``: 1 under SQLite):
``axisor_bus.side_by_side``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from automations.models import OrderIntent
from automations.services.execution import (
    RetryLaterError,
    may_claim_together,
    order_intent_advance,
    order_intent_after_settle,
    order_intent_send,
    order_intent_settle_ack,
    order_intents_claim,
    order_intents_deliver,
    order_intents_settle,
)
from axisor_bus.side_by_side import run_side_by_side, sends_grouped
from lnmarkets.schemas import Trade

logger = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """What became of a batch: follow-up intents to queue, intents to deliver again after a countdown, and the ids
    of intents whose delivery raised (left to their lease: the intent sweep queues them again)."""

    followups: list[int] = field(default_factory=list)
    retries: list[tuple[int, float]] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class BatchDeliveryError(Exception):
    """Some intents of a batch raised; the others were delivered. Their leases bring them back."""


def order_intents_execute(intent_ids: Sequence[int], *, threads: int) -> BatchOutcome:
    """Deliver every intent of ``intent_ids`` once (up to ``threads`` at a time); returns what to queue next. What
    the deliveries queue when they commit (their notifications) leaves in one batch at the end.

    The batch's intents are leased and read in two statements. Those that ``may_claim_together`` (a crash tick's
    closes) are claimed in one more, sent side by side, and the acknowledged ones settled in one transaction; every
    other intent, and every other outcome of a send, goes the way of a single delivery."""
    outcome = BatchOutcome()

    def recorded(intent_id: int, work: Callable[[], list[int] | Trade]) -> Trade | None:
        # The outcome's lists take appends from any thread (``list.append`` and ``list.extend`` are atomic).
        try:
            done = work()
        except RetryLaterError as exc:
            outcome.retries.append((intent_id, exc.countdown))
        except Exception:
            # Not swallowed: logged with its traceback, counted in ``failed`` (the task then fails), and the intent's
            # lease hands it back to the intent sweep, as for a single delivery that raised.
            logger.exception("intent %s: its delivery in a batch raised; its lease brings it back", intent_id)
            outcome.failed.append(intent_id)
        else:
            if isinstance(done, Trade):
                return done
            outcome.followups.extend(done)
        return None

    with sends_grouped():
        intents = order_intents_deliver(intent_ids)
        together = [intent for intent in intents if may_claim_together(intent)]
        if len(together) < 2:
            together = []
        claimed = {intent.pk for intent in order_intents_claim(together)}
        # One that may be claimed together but was not had been moved by another delivery: left to that one.
        alone = [intent for intent in intents if intent not in together]
        acks: list[tuple[OrderIntent, Trade]] = []

        def deliver(intent: OrderIntent) -> None:
            if intent.pk not in claimed:
                recorded(intent.pk, partial(order_intent_advance, intent))
                return
            trade = recorded(intent.pk, partial(order_intent_send, intent))
            if trade is not None:
                acks.append((intent, trade))

        run_side_by_side([*alone, *(intent for intent in together if intent.pk in claimed)], deliver, threads=threads)
        if acks:
            _settle_together(acks, outcome, recorded)
    return outcome


def _settle_together(
    acks: list[tuple[OrderIntent, Trade]], outcome: BatchOutcome, recorded: Callable[..., Trade | None]
) -> None:
    """The acknowledged intents settled in one transaction, or each on its own when that transaction failed."""
    try:
        settled = order_intents_settle(acks)
    except Exception:
        ids = [intent.pk for intent, _ in acks]
        logger.exception("intents %s: settling them together failed; each is settled on its own", ids)
        for intent, trade in acks:
            recorded(intent.pk, partial(order_intent_settle_ack, intent, trade))
        return
    outcome.followups.extend(settled.followups)
    for intent, found in settled.intents:
        recorded(intent.pk, partial(order_intent_after_settle, intent, found))
