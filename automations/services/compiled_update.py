"""Fixed-shape ``UPDATE`` statements written once per database, model and shape (issue #14, the crash tick).

A settled order writes the same few updates every time (its decision's outcome, its tracked trade closed); through
the ORM most of each was Django building and compiling the same SQL again (py-spy, GIL samples of the crash tick).
``compiled_update`` is ``Model.objects.filter(**where).update(**values)`` for plain values, matched and set by
equality: the statement is written once per (database, model, columns set, columns matched), and each value is
prepared by its field exactly as the ORM's update compiler prepares it (``get_db_prep_save``);
``tests/automations/test_compiled_update.py`` compares the rows with the ORM's on both backends.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

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
def _update_sql(db: str, model: type[Model], assigned: tuple[str, ...], matched: tuple[str, ...]) -> str:
    qn = connections[db].ops.quote_name
    sets = ", ".join(f"{qn(_field(model, name).column)} = %s" for name in assigned)
    where = " AND ".join(f"{qn(_field(model, name).column)} = %s" for name in matched)
    return f"UPDATE {qn(model._meta.db_table)} SET {sets} WHERE {where}"  # noqa: S608 - quoted identifiers, values as parameters


def _plain(name: str, value: object) -> object:
    if hasattr(value, "resolve_expression") or isinstance(value, Model):
        raise TypeError(f"{name}: only plain values can be written by compiled_update, not {value!r}")
    return value


def compiled_update(model: type[Model], *, where: Mapping[str, object], values: Mapping[str, object]) -> int:
    """``model.objects.filter(**where).update(**values)`` (attnames; plain values; ``where`` by equality, never
    ``None``); returns the number of rows updated."""
    if not where or not values:
        raise ValueError("compiled_update needs columns to match and columns to set")
    if any(value is None for value in where.values()):
        raise ValueError("compiled_update matches by equality: NULL never matches")
    db = router.db_for_write(model)
    connection = connections[db]
    params = [
        _field(model, name).get_db_prep_save(_plain(name, value), connection=connection)
        for name, value in values.items()
    ]
    params += [
        _field(model, name).get_db_prep_value(_plain(name, value), connection=connection, prepared=False)
        for name, value in where.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(db, model, tuple(values), tuple(where)), params)
        return int(cursor.rowcount)
