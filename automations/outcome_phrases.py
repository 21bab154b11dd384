"""The status messages that tell an order's outcome on an automation's row (``services.outcomes``): fixed English
phrases, stored as they are and translated when shown (listed in ``audit_text.PHRASES``)."""

from django.utils.translation import gettext_noop

OPEN_REFUSED = gettext_noop(
    "Error: the exchange refused to open the trade, so nothing was opened (the audit log says why). Paused until "
    "you edit or resume it."
)
ORDER_REFUSED = gettext_noop(
    "The exchange refused its last order (the audit log says why). It acts again the next time its trigger is met."
)
CANNOT_AFFORD = gettext_noop(
    "Cannot afford the entry: the free balance does not cover the margin and fee reserves. It enters once it does."
)
