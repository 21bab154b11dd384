"""``{{ automation|automation_summary }}``: what an automation does, in one sentence of the active language."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from automations.configs import config_from_json
from automations.describe import summary
from automations.models import Automation
from automations.specs import SpecError

register = template.Library()


@register.filter
def automation_summary(automation: Automation) -> str:
    try:
        config = config_from_json(automation.kind, automation.config)
    except SpecError:
        return _("Its stored settings are invalid: edit it to fix them.")
    return summary(config)


@register.filter
def grouped(value: object) -> str:
    """A price or amount grouped and with the decimal mark of the active locale (95,450.5 / 95.450,5)."""
    from decimal import Decimal, InvalidOperation

    from automations.describe import num

    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return num(number) if number.is_finite() else str(value)
