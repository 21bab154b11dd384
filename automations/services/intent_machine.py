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

from collections.abc import Mapping, Sequence
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


def _per_row(connection: BaseDatabaseWrapper, name: str, values: Mapping[int, object]) -> tuple[str, list[Any]]:
    """``column = CASE id WHEN … THEN … END``: a value of each row's own (plain values, prepared by the field;
    PostgreSQL's client-side binding writes each literal with its type, e.g. ``'…'::jsonb``)."""
    field = _FIELDS[name]
    quote = connection.ops.quote_name
    params: list[Any] = []
    for pk, value in values.items():
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"{name}: only plain values differ per row, not {value!r}")
        params += [pk, field.get_db_prep_save(value, connection=connection)]
    cases = " ".join(["WHEN %s THEN %s"] * len(values))
    return f"{quote(field.column)} = CASE {quote(_FIELDS['id'].column)} {cases} END", params


def _update_returning(
    values: dict[str, object],
    where: str,
    where_params: list[Any],
    per_row: Mapping[str, Mapping[int, object]] | None = None,
) -> tuple[list[tuple[Any, ...]], list[str], dict[str, object]]:
    """``UPDATE orderintent SET <values> WHERE <where> RETURNING id, <every other mutable column>``: the rows it
    wrote, the names of the columns read back (in their order after the id), and the values it wrote itself.
    ``per_row``: columns set to a value of each row's own (by id)."""
    db = router.db_for_write(OrderIntent)
    connection = connections[db]
    quote = connection.ops.quote_name
    assignments: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        sql, more = _assignment(connection, name, value)
        assignments.append(sql)
        params.extend(more)
    per_row = per_row or {}
    for name, by_pk in per_row.items():
        sql, more = _per_row(connection, name, by_pk)
        assignments.append(sql)
        params.extend(more)
    written = {name: value for name, value in values.items() if not hasattr(value, "resolve_expression")}
    read_back = [name for name in MUTABLE_FIELDS if name not in written and name not in per_row]
    returning = ", ".join(quote(_FIELDS[name].column) for name in ("id", *read_back))
    sql = f"UPDATE {quote(OrderIntent._meta.db_table)} SET {', '.join(assignments)} WHERE {where} RETURNING {returning}"  # noqa: S608 - quoted identifiers, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        rows = cursor.fetchall()
    return rows, read_back, written


def _take_row(intent: OrderIntent, row: tuple[Any, ...], read_back: list[str], written: dict[str, object]) -> None:
    """``intent`` as the row its compare-and-set wrote: the values it set, every other column as read back."""
    for name, value in zip(read_back, row[1:], strict=True):
        setattr(intent, name, intent_column_from_db(name, value))
    for name, value in written.items():
        setattr(intent, name, _FIELDS[name].to_python(value))


def _matching(connection: BaseDatabaseWrapper, intents: Sequence[OrderIntent]) -> tuple[str, list[Any]]:
    """The compare-and-set's condition for ``intents`` (each on its own id, state and attempt)."""
    quote = connection.ops.quote_name
    one = " AND ".join(f"{quote(_FIELDS[name].column)} = %s" for name in ("id", "state", "attempts"))
    params = [value for intent in intents for value in (intent.pk, intent.state, intent.attempts)]
    return " OR ".join([f"({one})"] * len(intents)), params


def _compare_and_set(intent: OrderIntent, values: dict[str, object]) -> bool:
    """``UPDATE … WHERE id = ? AND state = ? AND attempts = ? RETURNING …``: the compare-and-set and the re-read of
    the row it wrote in one statement (PostgreSQL, SQLite ≥ 3.35). On a match the instance takes the stored row as
    written: the values it set, and every other column read back (``F()`` expressions evaluated, counters another
    delivery moved included); without a match it is re-read, as before.

    The statement is written here rather than by ``QuerySet.update``: Django's query building and compilation were
    half of a transition's CPU, three transitions per order (issue #14, the crash tick); the values are prepared by
    their fields exactly as the ORM prepares them (``tests/automations/test_hot_paths.py``)."""
    where, params = _matching(connections[router.db_for_write(OrderIntent)], [intent])
    rows, read_back, written = _update_returning(values, where, params)
    if not rows:
        refresh_intent(intent)
        return False
    _take_row(intent, rows[0], read_back, written)
    return True


class IllegalTransitionError(ValueError):
    """A programming error: the code asked for an edge the state machine does not have."""


def _values(intent: OrderIntent, to: str, now: datetime | None, fields: Mapping[str, object]) -> dict[str, object]:
    if to not in EDGES[intent.state]:
        raise IllegalTransitionError(f"{intent.state} → {to} is not an edge of the intent state machine")
    moment = now or timezone.now()
    values: dict[str, object] = {"state": to, "updated_at": moment, **fields}
    if to in TERMINAL:
        values.setdefault("finished_at", moment)
        values.setdefault("next_check_at", None)
    return values


def transition(intent: OrderIntent, to: str, *, now: datetime | None = None, **fields: object) -> bool:
    """Move ``intent`` from the state and attempt it was read in to ``to``; False when another delivery moved it
    first. The instance holds the stored row either way (the one the update wrote, or the one that made it fail), so
    the caller always continues from the stored truth."""
    updated = _compare_and_set(intent, _values(intent, to, now, fields))
    if updated and to in TERMINAL:
        from automations.services.outcomes import intents_settled

        intents_settled([intent])  # the decision's final outcome, and the automation's row, told truthfully
    return updated


def _claim_fields(now: datetime, send_deadline: datetime, fence_at: datetime, lease: datetime | None) -> dict[str, Any]:
    return {
        "attempts": F("attempts") + 1,
        "sends": F("sends") + 1,
        "submitted_at": now,
        "send_deadline": send_deadline,
        "fence_at": fence_at,
        "next_check_at": lease or fence_at,
        "checks": 0,
    }


def transition_many(
    intents: Sequence[OrderIntent], to: str, fields: Sequence[Mapping[str, object]], *, now: datetime | None = None
) -> list[OrderIntent]:
    """``transition`` of several intents to ``to`` in one statement, each with its own ``fields`` (plain values, the
    same columns for all): each row is its own compare-and-set (its id, state and attempt), so each intent moves
    exactly as ``transition`` would move it, or not at all. Returns the intents moved, each holding its written row;
    the others were moved by another delivery first and are left as read. A terminal outcome is told by the caller
    (``outcomes.intents_settled``), in the same transaction."""
    if not intents:
        return []
    columns = set(fields[0])
    if len(fields) != len(intents) or any(set(f) != columns for f in fields):
        raise ValueError("transition_many needs one set of fields per intent, all of the same columns")
    moment = now or timezone.now()
    values = {}
    for intent in intents:
        values = _values(intent, to, moment, {})  # every edge checked; the values are the same for all
    per_row = {name: {intent.pk: f[name] for intent, f in zip(intents, fields, strict=True)} for name in columns}
    for name in columns:
        values.pop(name, None)
    where, params = _matching(connections[router.db_for_write(OrderIntent)], intents)
    rows, read_back, written = _update_returning(values, where, params, per_row)
    by_id = {row[0]: row for row in rows}
    moved = [intent for intent in intents if intent.pk in by_id]
    for intent in moved:
        own = {name: per_row[name][intent.pk] for name in columns}
        _take_row(intent, by_id[intent.pk], read_back, {**written, **own})
    return moved


def claim(
    intent: OrderIntent, *, now: datetime, send_deadline: datetime, fence_at: datetime, lease: datetime | None = None
) -> bool:
    """CREATED → SUBMITTING for attempt ``attempts + 1``: the only edge that advances the fencing token. ``lease``:
    when the sweep may assume the sending delivery was lost (default: the fence)."""
    return transition(intent, State.SUBMITTING, now=now, **_claim_fields(now, send_deadline, fence_at, lease))


def claim_many(
    intents: Sequence[OrderIntent],
    *,
    now: datetime,
    send_deadline: datetime,
    fence_at: datetime,
    lease: datetime | None = None,
) -> list[OrderIntent]:
    """``claim`` of several CREATED intents in one statement: each row is its own compare-and-set (its id, state and
    attempt), so each intent is claimed exactly as ``claim`` would claim it, or not at all. Returns the intents
    claimed, each holding its written row; the others were moved by another delivery and are left as read (their
    caller does nothing more with them, as after a failed ``claim``)."""
    if not intents:
        return []
    for intent in intents:
        if intent.state != State.CREATED:
            raise IllegalTransitionError(f"{intent.state} → {State.SUBMITTING}: only a CREATED intent is claimed")
    values = _values(intents[0], State.SUBMITTING, now, _claim_fields(now, send_deadline, fence_at, lease))
    where, params = _matching(connections[router.db_for_write(OrderIntent)], intents)
    rows, read_back, written = _update_returning(values, where, params)
    by_id = {row[0]: row for row in rows}
    claimed = [intent for intent in intents if intent.pk in by_id]
    for intent in claimed:
        _take_row(intent, by_id[intent.pk], read_back, written)
    return claimed
