"""Audit entries written by one statement compiled once per database (issue #14, the crash tick).

Every settled order writes its audit entries (its acceptance and its outcome) in one ``INSERT``. Through the ORM that
was ``bulk_create``, which on PostgreSQL turns two rows into an ``INSERT … SELECT * FROM UNNEST(…)`` of one array per
column: the arrays' quoting in Python and the query's compilation were a tenth of a worker's CPU in the crash tick
(py-spy). Here the ``INSERT … VALUES (…), (…) RETURNING id`` is written once per database alias and row count, and
each value is prepared by its field exactly as the ORM prepares it for a save (``pre_save``, then
``get_db_prep_save``); ``tests/automations/test_audit_rows.py`` compares every column with the ORM's rows on both
backends. No signal is sent here: the caller sends ``post_save`` as ``bulk_create``'s callers did.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connections, router
from django.db.models import Field

from automations.models import AuditEntry

_FIELDS: tuple[Field[Any, Any], ...] = tuple(f for f in AuditEntry._meta.concrete_fields if not f.primary_key)


@cache
def _insert_sql(db: str, rows: int) -> str:
    connection = connections[db]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(field.column) for field in _FIELDS)
    row = "(" + ", ".join(["%s"] * len(_FIELDS)) + ")"
    table, pk = qn(AuditEntry._meta.db_table), qn(AuditEntry._meta.pk.column)
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * rows)} RETURNING {pk}"  # noqa: S608 - quoted identifiers, values as parameters


def audit_entries_insert(entries: Sequence[AuditEntry]) -> None:
    """Insert ``entries`` (new, unsaved) in one statement, in order; each then holds its id and creation time and
    is saved as far as the ORM can tell (``_state``)."""
    if not entries:
        return
    db = router.db_for_write(AuditEntry)
    connection = connections[db]
    params: list[Any] = []
    for entry in entries:
        for field in _FIELDS:
            params.append(field.get_db_prep_save(field.pre_save(entry, add=True), connection=connection))
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(db, len(entries)), params)
        ids = [row[0] for row in cursor.fetchall()]
    for entry, pk in zip(entries, ids, strict=True):
        entry.pk = pk
        entry._state.adding = False
        entry._state.db = db
