"""The start of a delivery's two statements, compiled once per process and database (issue #14, the crash tick).

A delivery counts and leases its intent, then reads it with its account and automation. Through the ORM
(``filter().update()``, then ``select_related("account", "automation").first()``) most of that time was Django
building the same SQL again: the SELECT's compilation alone was 8 % of a worker's CPU in the crash tick (py-spy).
Here both statements are written once per database connection alias, and the three rows are built from the one
result row as the ORM builds them: each column through its backend's and its field's converters, then
``Model.from_db``, with the account and automation cached on the intent (what ``select_related`` does).
``tests/automations/test_intent_read.py`` checks every field against the ORM's read on both backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from accounts.models import ExchangeAccount
from automations.models import Automation, OrderIntent

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]
TERMINAL = tuple(sorted(OrderIntent.TERMINAL))


@dataclass(frozen=True)
class _Table:
    model: type[Model]
    alias: str
    attnames: tuple[str, ...]
    columns: tuple[tuple[Any, tuple[Converter, ...]], ...]  # (Col, its converters), in ``attnames`` order
    index: dict[str, int]  # attname → position in ``columns``

    def convert(self, position: int, value: Any, connection: BaseDatabaseWrapper) -> Any:  # noqa: ANN401 - a column
        col, converters = self.columns[position]
        for converter in converters:
            value = converter(value, col, connection)
        return value

    def build(self, db: str, connection: BaseDatabaseWrapper, values: Sequence[Any]) -> Model:
        converted = [self.convert(i, value, connection) for i, value in enumerate(values)]
        return self.model.from_db(db, self.attnames, converted)


@dataclass(frozen=True)
class _Plan:
    lease_sql: str
    read_sql: str
    tables: tuple[_Table, ...]
    next_check_at: Field[Any, Any]
    lease_many: Callable[[int], str]  # the lease of n intents, returning the ids it leased
    read_many: Callable[[int], str]  # the read of n intents


def _table(model: type[Model], alias: str, connection: BaseDatabaseWrapper) -> _Table:
    fields = model._meta.concrete_fields
    columns = []
    for field in fields:
        col = field.get_col(alias)
        columns.append((col, (*connection.ops.get_db_converters(col), *col.get_db_converters(connection))))
    attnames = tuple(f.attname for f in fields)
    return _Table(model, alias, attnames, tuple(columns), {name: i for i, name in enumerate(attnames)})


def _column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return str(field.column)


def _plan_for(db: str) -> _Plan:
    connection = connections[db]
    qn = connection.ops.quote_name
    intent, account, automation = (
        _table(OrderIntent, "i", connection),
        _table(ExchangeAccount, "a", connection),
        _table(Automation, "m", connection),
    )
    meta = OrderIntent._meta
    select = ", ".join(
        f"{table.alias}.{qn(col.target.column)}" for table in (intent, account, automation) for col, _ in table.columns
    )
    deliveries, next_check_at, state = (qn(_column(OrderIntent, f)) for f in ("deliveries", "next_check_at", "state"))
    pk = qn(meta.pk.column)
    # Identifiers of the models, quoted by the backend; every value is a parameter.
    lease_head = (
        f"UPDATE {qn(meta.db_table)} SET {deliveries} = {deliveries} + 1, {next_check_at} = %s "  # noqa: S608
        f"WHERE NOT ({state} IN ({', '.join(['%s'] * len(TERMINAL))})) AND {pk} "
    )
    read_head = (
        f"SELECT {select} FROM {qn(meta.db_table)} i "  # noqa: S608
        f"INNER JOIN {qn(ExchangeAccount._meta.db_table)} a "
        f"ON a.{qn(ExchangeAccount._meta.pk.column)} = i.{qn(_column(OrderIntent, 'account'))} "
        f"LEFT OUTER JOIN {qn(Automation._meta.db_table)} m "
        f"ON m.{qn(Automation._meta.pk.column)} = i.{qn(_column(OrderIntent, 'automation'))} "
        f"WHERE i.{pk} "
    )

    def ids(count: int) -> str:
        return f"IN ({', '.join(['%s'] * count)})"

    return _Plan(
        f"{lease_head}= %s",
        f"{read_head}= %s",
        (intent, account, automation),
        meta.get_field("next_check_at"),
        lease_many=lambda count: f"{lease_head}{ids(count)} RETURNING {pk}",
        read_many=lambda count: f"{read_head}{ids(count)}",
    )


_plans: dict[str, _Plan] = {}


def _plan() -> tuple[str, BaseDatabaseWrapper, _Plan]:
    db = router.db_for_write(OrderIntent)
    plan = _plans.get(db)
    if plan is None:
        plan = _plans[db] = _plan_for(db)
    return db, connections[db], plan


def intent_lease(intent_id: int, next_check_at: datetime) -> bool:
    """Count one more delivery of a non-terminal intent and lease it until ``next_check_at``; False when it is
    terminal or gone. (``OrderIntent.objects.filter(pk=…).exclude(state__in=TERMINAL).update(deliveries=F(…) + 1,
    next_check_at=…)``.)"""
    _, connection, plan = _plan()
    value = plan.next_check_at.get_db_prep_save(next_check_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(plan.lease_sql, [value, *TERMINAL, intent_id])
        return bool(cursor.rowcount)


def intents_lease(intent_ids: Sequence[int], next_check_at: datetime) -> set[int]:
    """``intent_lease`` of several intents in one statement; returns the ids it leased (the others are terminal or
    gone). Each row is counted and leased on its own condition, exactly as by ``intent_lease``."""
    if not intent_ids:
        return set()
    _, connection, plan = _plan()
    value = plan.next_check_at.get_db_prep_save(next_check_at, connection)
    with connection.cursor() as cursor:
        cursor.execute(plan.lease_many(len(intent_ids)), [value, *TERMINAL, *intent_ids])
        return {row[0] for row in cursor.fetchall()}


def intent_with_account_and_automation(intent_id: int) -> OrderIntent | None:
    """The intent with its account and automation (``None``: gone) in one statement.
    (``OrderIntent.objects.select_related("account", "automation").filter(pk=…).first()``.)"""
    db, connection, plan = _plan()
    with connection.cursor() as cursor:
        cursor.execute(plan.read_sql, [intent_id])
        row = cursor.fetchone()
    return _intent_from_row(db, connection, plan, row) if row is not None else None


def intents_with_account_and_automation(intent_ids: Sequence[int]) -> list[OrderIntent]:
    """``intent_with_account_and_automation`` of several intents in one statement, in the order of ``intent_ids``
    (the ones gone left out)."""
    if not intent_ids:
        return []
    db, connection, plan = _plan()
    with connection.cursor() as cursor:
        cursor.execute(plan.read_many(len(intent_ids)), list(intent_ids))
        rows = cursor.fetchall()
    by_id = {intent.pk: intent for intent in (_intent_from_row(db, connection, plan, row) for row in rows)}
    return [by_id[pk] for pk in dict.fromkeys(intent_ids) if pk in by_id]


def _intent_from_row(db: str, connection: BaseDatabaseWrapper, plan: _Plan, row: Sequence[Any]) -> OrderIntent:
    intent_table, account_table, automation_table = plan.tables
    cut = len(intent_table.columns)
    cut2 = cut + len(account_table.columns)
    intent = intent_table.build(db, connection, row[:cut])
    account = account_table.build(db, connection, row[cut:cut2])
    automation_row = row[cut2:]
    automation = automation_table.build(db, connection, automation_row) if automation_row[0] is not None else None
    assert isinstance(intent, OrderIntent)
    OrderIntent._meta.get_field("account").set_cached_value(intent, account)
    OrderIntent._meta.get_field("automation").set_cached_value(intent, automation)
    return intent


_tables: dict[tuple[str, type[Model]], _Table] = {}


def models_from_rows(model: type[Model], db: str, rows: Sequence[Sequence[Any]]) -> list[Model]:
    """Instances of ``model`` from rows of all its concrete columns in their order (a statement written elsewhere
    once), each built as the ORM builds it: every column through its converters, then ``Model.from_db``."""
    table = _tables.get((db, model))
    if table is None:
        table = _tables[(db, model)] = _table(model, model._meta.db_table, connections[db])
    connection = connections[db]
    return [table.build(db, connection, row) for row in rows]


def intent_column_from_db(name: str, value: object) -> object:
    """One ``OrderIntent`` column (by attname) as the ORM would load it, through the converters found once with
    the plan (the compare-and-set's ``RETURNING`` row, ``intent_machine``)."""
    _, connection, plan = _plan()
    table = plan.tables[0]
    return table.convert(table.index[name], value, connection)
