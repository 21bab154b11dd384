"""The automation models' choice labels, marked for translation (``automations.models`` keeps plain strings, so
that changing a label never needs a migration); templates translate them with ``{% translate value %}``."""

from django.utils.translation import gettext_noop

CHOICE_LABELS = (
    gettext_noop("Margin Guard"),
    gettext_noop("TP/SL management"),
    gettext_noop("Auto Entry"),
    gettext_noop("Active"),
    gettext_noop("Paused"),
    gettext_noop("Completed"),
    gettext_noop("Error"),
    gettext_noop("Decision"),
    gettext_noop("Skipped"),
    gettext_noop("Order outcome"),
    gettext_noop("Reconciliation"),
    gettext_noop("Status change"),
    gettext_noop("Pending"),
    gettext_noop("OK"),
    gettext_noop("Rejected"),
    gettext_noop("Unknown"),
    gettext_noop("Info"),
)
