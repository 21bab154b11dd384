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
