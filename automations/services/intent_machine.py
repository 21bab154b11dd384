"""The order-intent state machine: which state may follow which, and the one compare-and-set that moves an intent.

The argument that no interleaving of deliveries, crashes, sweeps and slow answers sends a second order for one
intent is written out in ``docs/exactly-once.md``; this module is the part of it that the database enforces.

States (``OrderIntent.State``)::

    CREATED ──claim──▶ SUBMITTING ──2xx──▶ ACKED ──bookkeeping──▶ RECONCILED
       ▲                 │  │  │                                     ▲
       │ provably unsent │  │  └──effect found by reconciliation────┘
       └─────────────────┘  │
       ▲                    └──ambiguous (timeout, 5xx)──▶ UNKNOWN ──effect found──▶ RECONCILED
       └──absent, asked after the fence────────────────────┘
    CREATED / SUBMITTING / UNKNOWN ──refused, rejected, gave up──▶ REJECTED
    CREATED ──nothing left to do (the trade is already gone)──▶ RECONCILED

Every transition is ``UPDATE … WHERE id = ? AND state = ? AND attempts = ?``: ``attempts`` is the fencing token of
the current attempt. Only the claim (CREATED → SUBMITTING) increments it, so a delivery acting on what it read
about attempt *n* can never move an intent that another delivery has since moved on, and a failed compare-and-set
always means "somebody else decided": the caller re-reads and never sends on a stale view.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Value
from django.db.models.expressions import CombinedExpression
from django.utils import timezone

from automations.models import OrderIntent
from automations.services.intent_read import intent_column_from_db

State = OrderIntent.State

EDGES: Final[Mapping[str, frozenset[str]]] = {
    # CREATED → RECONCILED: nothing left to send (the trade a close or an addition was for is already gone).
    State.CREATED: frozenset({State.SUBMITTING, State.RECONCILED, State.REJECTED}),
    State.SUBMITTING: frozenset({State.ACKED, State.UNKNOWN, State.CREATED, State.RECONCILED, State.REJECTED}),
    State.UNKNOWN: frozenset({State.CREATED, State.RECONCILED, State.REJECTED}),
    State.ACKED: frozenset({State.RECONCILED}),
    State.RECONCILED: frozenset(),
    State.REJECTED: frozenset(),
}
TERMINAL: Final[frozenset[str]] = frozenset(state for state, nexts in EDGES.items() if not nexts)
# States in which an earlier attempt may have reached the exchange: never sent again without reconciliation.
IN_FLIGHT: Final[frozenset[str]] = frozenset({State.SUBMITTING, State.UNKNOWN, State.ACKED})


# The columns a delivery re-reads after a write: every concrete column but the relations, which never change for an
# intent (its account, automation and parent are fixed at creation), so their cached rows stay in hand.
MUTABLE_FIELDS: Final[tuple[str, ...]] = tuple(
    f.attname for f in OrderIntent._meta.concrete_fields if not f.is_relation and not f.primary_key
)


def refresh_intent(intent: OrderIntent) -> None:
    """Re-read ``intent``'s stored state, keeping its cached account, automation and parent (one query)."""
    intent.refresh_from_db(fields=MUTABLE_FIELDS)


_FIELDS: Final = {f.attname: f for f in OrderIntent._meta.concrete_fields}


def _assignment(connection: BaseDatabaseWrapper, name: str, value: object) -> tuple[str, list[Any]]:
    """``column = …`` of the UPDATE and its parameters, as Django's update compiler writes them: a value prepared by
    its field (``NULL`` for ``None``), or a counter ``F(name) ± integer``. Anything else is a programming error."""
    field = _FIELDS[name]
    quote = connection.ops.quote_name
    column = quote(field.column)
    if isinstance(value, CombinedExpression):
        lhs, rhs = value.lhs, value.rhs
        if not (
            isinstance(lhs, F) and isinstance(rhs, Value) and type(rhs.value) is int and value.connector in ("+", "-")
        ):
            raise TypeError(f"{name}: only F(column) ± integer can be set by a transition, not {value!r}")
        return f"{column} = ({quote(_FIELDS[lhs.name].column)} {value.connector} %s)", [rhs.value]
    if hasattr(value, "resolve_expression"):
        raise TypeError(f"{name}: only F(column) ± integer can be set by a transition, not {value!r}")
    prepared = field.get_db_prep_save(value, connection=connection)
    if prepared is None:
        return f"{column} = NULL", []
    return f"{column} = %s", [prepared]


def _compare_and_set(intent: OrderIntent, values: dict[str, object]) -> bool:
    """``UPDATE … WHERE id = ? AND state = ? AND attempts = ? RETURNING …``: the compare-and-set and the re-read of
    the row it wrote in one statement (PostgreSQL, SQLite ≥ 3.35). On a match the instance takes the stored row as
    written: the values it set, and every other column read back (``F()`` expressions evaluated, counters another
    delivery moved included); without a match it is re-read, as before.

    The statement is written here rather than by ``QuerySet.update``: Django's query building and compilation were
    half of a transition's CPU, three transitions per order (issue #14, the crash tick); the values are prepared by
    their fields exactly as the ORM prepares them (``tests/automations/test_hot_paths.py``)."""
    db = router.db_for_write(OrderIntent)
    connection = connections[db]
    quote = connection.ops.quote_name
    assignments: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        sql, more = _assignment(connection, name, value)
        assignments.append(sql)
        params.extend(more)
    written = {name: value for name, value in values.items() if not hasattr(value, "resolve_expression")}
    read_back = [name for name in MUTABLE_FIELDS if name not in written]
    returning = ", ".join(quote(_FIELDS[name].column) for name in ("id", *read_back))
    where = " AND ".join(f"{quote(_FIELDS[name].column)} = %s" for name in ("id", "state", "attempts"))
    sql = f"UPDATE {quote(OrderIntent._meta.db_table)} SET {', '.join(assignments)} WHERE {where} RETURNING {returning}"  # noqa: S608 - quoted identifiers, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, intent.pk, intent.state, intent.attempts])
        row = cursor.fetchone()
    if row is None:
        refresh_intent(intent)
        return False
    for name, value in zip(read_back, row[1:], strict=True):
        setattr(intent, name, intent_column_from_db(name, value))
    for name, value in written.items():
        setattr(intent, name, _FIELDS[name].to_python(value))
    return True


class IllegalTransitionError(ValueError):
    """A programming error: the code asked for an edge the state machine does not have."""


def transition(intent: OrderIntent, to: str, *, now: datetime | None = None, **fields: object) -> bool:
    """Move ``intent`` from the state and attempt it was read in to ``to``; False when another delivery moved it
    first. The instance holds the stored row either way (the one the update wrote, or the one that made it fail), so
    the caller always continues from the stored truth."""
    if to not in EDGES[intent.state]:
        raise IllegalTransitionError(f"{intent.state} → {to} is not an edge of the intent state machine")
    moment = now or timezone.now()
    values: dict[str, object] = {"state": to, "updated_at": moment, **fields}
    if to in TERMINAL:
        values.setdefault("finished_at", moment)
        values.setdefault("next_check_at", None)
    updated = _compare_and_set(intent, values)
    if updated and to in TERMINAL:
        from automations.services.outcomes import intent_settled

        intent_settled(intent)  # the decision's final outcome, and the automation's row, told truthfully
    return updated


def claim(
    intent: OrderIntent, *, now: datetime, send_deadline: datetime, fence_at: datetime, lease: datetime | None = None
) -> bool:
    """CREATED → SUBMITTING for attempt ``attempts + 1``: the only edge that advances the fencing token. ``lease``:
    when the sweep may assume the sending delivery was lost (default: the fence)."""
    return transition(
        intent,
        State.SUBMITTING,
        now=now,
        attempts=F("attempts") + 1,
        sends=F("sends") + 1,
        submitted_at=now,
        send_deadline=send_deadline,
        fence_at=fence_at,
        next_check_at=lease or fence_at,
        checks=0,
    )
