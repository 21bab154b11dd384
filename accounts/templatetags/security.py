"""Template filters of the security pages."""

from __future__ import annotations

import math
from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def whole_minutes(value: object) -> int | str:
    """A ``timedelta`` as whole minutes, rounded up (the lockout page's cool-off); anything else unchanged."""
    if isinstance(value, timedelta):
        return max(1, math.ceil(value.total_seconds() / 60))
    return str(value)
