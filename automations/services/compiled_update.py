"""Fixed-shape ``UPDATE`` statements written once per database, model and shape (issue #14, the crash tick).

A settled order writes the same few updates every time (its decision's outcome, its tracked trade closed); through
the ORM most of each was Django building and compiling the same SQL again (py-spy, GIL samples of the crash tick).
``compiled_update`` is ``Model.objects.filter(**where).update(**values)`` for plain values, matched and set by
equality: the statement is written once per (database, model, columns set, columns matched), and each value is
prepared by its field exactly as the ORM's update compiler prepares it (``get_db_prep_save``);
``tests/automations/test_compiled_update.py`` compares the rows with the ORM's on both backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, cast

from django.db import connections, router
from django.db.models import Field, Model


@cache
def _columns(model: type[Model]) -> dict[str, Field[Any, Any]]:
    return {field.attname: field for field in model._meta.concrete_fields}


def _field(model: type[Model], attname: str) -> Field[Any, Any]:
    field = _columns(model).get(attname)
    if field is None:
        raise LookupError(f"{model.__name__} has no column {attname!r}")
    return field


@cache
def _update_sql(
    db: str, model: type[Model], assigned: tuple[str, ...], matched: tuple[tuple[str, int | None], ...]
) -> str:
    """``matched``: (column, None) for an equality, (column, n) for ``IN`` n values."""
    qn = connections[db].ops.quote_name
    sets = ", ".join(f"{qn(_field(model, name).column)} = %s" for name in assigned)
    where = " AND ".join(
        f"{qn(_field(model, name).column)} " + ("= %s" if count is None else f"IN ({', '.join(['%s'] * count)})")
        for name, count in matched
    )
    return f"UPDATE {qn(model._meta.db_table)} SET {sets} WHERE {where}"  # noqa: S608 - quoted identifiers, values as parameters


def _plain(name: str, value: object) -> object:
    if hasattr(value, "resolve_expression") or isinstance(value, Model):
        raise TypeError(f"{name}: only plain values can be written by compiled_update, not {value!r}")
    return value


def compiled_update(model: type[Model], *, where: Mapping[str, object], values: Mapping[str, object]) -> int:
    """``model.objects.filter(**where).update(**values)`` (attnames; plain values; ``where`` by equality, never
    ``None``, or by ``IN`` for a list or tuple of values: ``filter(name__in=…)``); returns the number of rows
    updated."""
    if not where or not values:
        raise ValueError("compiled_update needs columns to match and columns to set")
    matched = {name: list(value) if isinstance(value, list | tuple) else [value] for name, value in where.items()}
    if any(value is None for each in matched.values() for value in each):
        raise ValueError("compiled_update matches by equality: NULL never matches")
    if any(not each for each in matched.values()):
        return 0  # IN () matches nothing
    db = router.db_for_write(model)
    connection = connections[db]
    params = [
        _field(model, name).get_db_prep_save(_plain(name, value), connection=connection)
        for name, value in values.items()
    ]
    params += [
        _field(model, name).get_db_prep_value(_plain(name, value), connection=connection, prepared=False)
        for name, each in matched.items()
        for value in each
    ]
    shape = tuple((name, len(matched[name]) if isinstance(where[name], list | tuple) else None) for name in where)
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(db, model, tuple(values), shape), params)
        return int(cursor.rowcount)


def compiled_update_rows(
    model: type[Model], *, key: tuple[str, ...], rows: Sequence[Mapping[str, object]]
) -> set[tuple[object, ...]]:
    """Each of ``rows`` written to the row matched by its ``key`` columns (each row holds its key's values and the
    same other columns, plain values): ``compiled_update(model, where=<its key>, values=<the rest>)`` of every row,
    in one statement on PostgreSQL (``UPDATE … SET c = v.c FROM (SELECT … UNION ALL SELECT …) v WHERE <key> …
    RETURNING <key>``, each value cast to its column's type), one statement each elsewhere. Returns the keys
    matched, as tuples of plain values; the others matched nothing and wrote nothing. A key must match at most one
    row."""
    if not rows:
        return set()
    columns = tuple(name for name in rows[0] if name not in key)
    if not columns or any(set(row) != {*key, *columns} for row in rows):
        raise ValueError("compiled_update_rows needs the key and the same columns to set in every row")
    db = router.db_for_write(model)
    connection = connections[db]
    if connection.vendor != "postgresql":
        return {
            tuple(row[name] for name in key)
            for row in rows
            if compiled_update(
                model, where={name: row[name] for name in key}, values={name: row[name] for name in columns}
            )
        }
    params: list[Any] = []
    for row in rows:
        for name in key:
            params.append(
                _field(model, name).get_db_prep_value(_plain(name, row[name]), connection=connection, prepared=False)
            )
        for name in columns:
            params.append(_field(model, name).get_db_prep_save(_plain(name, row[name]), connection=connection))
    with connection.cursor() as cursor:
        cursor.execute(_update_rows_sql(db, model, key, columns, len(rows)), params)
        return {tuple(found) for found in cursor.fetchall()}


@cache
def _update_rows_sql(db: str, model: type[Model], key: tuple[str, ...], columns: tuple[str, ...], count: int) -> str:
    connection = connections[db]
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)

    def alias(name: str) -> str:
        return qn(f"v_{name}")

    def value(name: str) -> str:
        cast_type = cast(Any, _field(model, name)).cast_db_type(connection)  # Django's; not in the type stubs
        return f"CAST(%s AS {cast_type}) AS {alias(name)}"

    one = "SELECT " + ", ".join(value(name) for name in (*key, *columns))
    sets = ", ".join(f"{qn(_field(model, name).column)} = v.{alias(name)}" for name in columns)
    where = " AND ".join(f"{table}.{qn(_field(model, name).column)} = v.{alias(name)}" for name in key)
    returning = ", ".join(f"{table}.{qn(_field(model, name).column)}" for name in key)
    values = " UNION ALL ".join([one] * count)
    return f"UPDATE {table} SET {sets} FROM ({values}) AS v WHERE {where} RETURNING {returning}"  # noqa: S608 - quoted identifiers, values as parameters
