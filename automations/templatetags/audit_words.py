"""``{{ entry|audit_text }}``: what an audit entry says, in the active language (``automations.audit_text``)."""

from __future__ import annotations

from typing import Any

from django import template

from automations import audit_text as texts
from automations.models import AuditEntry

register = template.Library()


@register.filter
def audit_text(entry: AuditEntry) -> str:
    return texts.audit_text(entry)


@register.filter
def audit_inputs(entry: AuditEntry) -> list[tuple[str, Any]]:
    """The entry's inputs for its details, without the stored message key (``i18n``)."""
    inputs = entry.inputs if isinstance(entry.inputs, dict) else {}
    return [(key, value) for key, value in inputs.items() if key != "i18n"]


@register.filter
def decision_details(entry: AuditEntry) -> list[tuple[str, Any]]:
    """The decision's fields for its details: not its English ``reason`` (the line above says it in the reader's
    language), nor what the line and its chips already show."""
    decision = entry.decision if isinstance(entry.decision, dict) else {}
    return [(key, value) for key, value in decision.items() if key not in ("inputs", "reason", "protective")]


@register.filter
def status_text(message: str) -> str:
    """An automation's status message in the active language (the fixed ones; a reason with details as stored)."""
    return texts.phrase(message)


@register.filter
def kind_label(kind: str) -> str:
    """An automation kind's name in the active language (its code when unknown)."""
    return texts.label("kind", kind)


@register.filter
def decision_row_text(row: Any) -> str:  # noqa: ANN401 - a preview's DecisionRow (automations.services.management)
    """A preview decision's reason in the active language, from its kind, fields and inputs (else the engine's)."""
    decision = {"kind": row.kind, **dict(row.details)}
    return texts.decision_text(decision, dict(row.inputs)) or str(row.reason)
