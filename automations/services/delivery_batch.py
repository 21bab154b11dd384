"""Several order intents delivered by one task, side by side (issue #14: the crash tick; docs/capacity.md).

Each intent goes through ``execution.order_intent_execute`` exactly as its own task would take it: a batch changes
how the work reaches a worker, never what is sent. Every move of an intent is a compare-and-set of that intent
(docs/exactly-once.md), so a batch redelivered after its worker died, or an intent delivered by a batch and by its
own task at once, still sends once; the fault battery runs its kill scenarios through batches too.

What a batch saves: one broker message, one hand-over to a worker child and one task set-up for several intents,
and the waits on the exchange (tens to hundreds of milliseconds per POST at the real one) overlap in threads instead
of holding a worker child each. Threads are used only outside a transaction (others would not see its writes) and
with a connection pool behind them (``settings.DELIVERY_THREADS``: 1 under SQLite): ``axisor_bus.side_by_side``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from automations.services.execution import RetryLaterError, order_intent_execute
from axisor_bus.side_by_side import run_side_by_side, sends_grouped

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
    the deliveries queue when they commit (their notifications) leaves in one batch at the end."""
    outcome = BatchOutcome()

    def deliver(intent_id: int) -> None:
        # The outcome's lists take appends from any thread (``list.append`` and ``list.extend`` are atomic).
        try:
            outcome.followups.extend(order_intent_execute(intent_id=intent_id))
        except RetryLaterError as exc:
            outcome.retries.append((intent_id, exc.countdown))
        except Exception:
            # Not swallowed: logged with its traceback, counted in ``failed`` (the task then fails), and the intent's
            # lease hands it back to the intent sweep, as for a single delivery that raised.
            logger.exception("intent %s: its delivery in a batch raised; its lease brings it back", intent_id)
            outcome.failed.append(intent_id)

    with sends_grouped():
        run_side_by_side(dict.fromkeys(intent_ids), deliver, threads=threads)
    return outcome
