"""The one way notifications learn of outcomes: a receiver on new audit entries (connected in ``ready``).

It runs inside the writer's transaction. A failure here must never undo a trading outcome, so the work that can
fail on its own (the wording and the writes) runs in a savepoint and any error is logged (with its traceback) and
swallowed: a lost notification is reported, a lost audit entry or order would be far worse.

Who wants the entry is read first, outside that savepoint: most owners of a crash tick want nothing, and a
savepoint costs two statements per order (issue #14). That read is one more statement of the writer's transaction:
if the database fails it, the transaction fails as it would on any of its own statements, and the outcome is
written again by the next delivery (an order's intent stays in the state it had; nothing is sent again).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models.signals import post_save

from automations.models import AuditEntry, GlobalSwitch

logger = logging.getLogger(__name__)


def on_audit_entry_saved(
    sender: Any,  # noqa: ANN401
    instance: AuditEntry,
    created: bool,
    raw: bool = False,
    shared_reads: dict[object, object] | None = None,
    **kwargs: Any,  # noqa: ANN401
) -> None:
    """``shared_reads``: given by a writer of several entries at once (an order batch settling its closes), shared
    by their signals in the writer's transaction: the owner's channels are read once for all of them."""
    if not created or raw or instance.event in (AuditEntry.Event.DECISION, AuditEntry.Event.SKIP):
        return
    from notifications.derive import audit_channels, calls_for_notification, notifications_from_audit

    if not calls_for_notification(instance):
        return  # most entries call for none: no savepoint, no query (an order's acceptance, a decision's outcome)
    try:
        channels = audit_channels(instance, shared_reads)
    except DatabaseError:
        # A failed statement of the writer's transaction fails it, loudly: swallowed here, PostgreSQL would turn the
        # writer's COMMIT into a silent rollback while Django ran its on-commit hooks as if it had committed.
        raise
    except Exception:  # noqa: BLE001 — never let a notification break the outcome it reports
        logger.exception("notifications for audit entry %s not derived", instance.pk)
        return
    if not channels:
        return  # nobody wants it: no savepoint either
    try:
        with transaction.atomic():
            notifications_from_audit(instance, channels)
    except Exception:  # noqa: BLE001 — never let a notification break the outcome it reports
        logger.exception("notifications for audit entry %s not derived", instance.pk)


def on_global_switch_saved(
    sender: Any,  # noqa: ANN401
    instance: GlobalSwitch,
    created: bool = False,
    raw: bool = False,
    **kwargs: Any,  # noqa: ANN401
) -> None:
    """The global kill switch writes its audit entries with ``bulk_create`` (no ``post_save``): tell every user with
    an exchange account from the switch row itself (not its creation in the default, off state)."""
    if raw or (created and not instance.kill_switch):
        return
    from notifications.derive import global_kill_switch_notify

    try:
        with transaction.atomic():
            global_kill_switch_notify(instance)
    except Exception:  # noqa: BLE001 — never let a notification break the switch it reports
        logger.exception("notifications for the global kill switch not derived")


def connect() -> None:
    post_save.connect(on_audit_entry_saved, sender=AuditEntry, dispatch_uid="notifications.audit_entry")
    post_save.connect(on_global_switch_saved, sender=GlobalSwitch, dispatch_uid="notifications.global_switch")
