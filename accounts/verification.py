"""Verify credentials typed into the account form against the exchange (``GET /v3/account``).

A failure becomes a plain-English form error; nothing is saved. Success returns the granted permissions.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from accounts.forms import ExchangeAccountForm
from accounts.services import Verification
from lnmarkets.credentials import Credentials
from lnmarkets.exceptions import AuthError, LNMarketsError, NetworkUnreachableError, PermissionDeniedError
from lnmarkets.verify import verify_credentials

logger = logging.getLogger(__name__)


@sensitive_variables("form", "credentials", "data")
def verify_form_credentials(form: ExchangeAccountForm) -> Verification | None:
    """Ask the exchange whether the form's credentials work; add a form error and return ``None`` if not.

    A key that cannot trade is saved (the dashboard can still watch it) but the error explains it; a key that can
    withdraw is accepted with a warning, shown on the account list.
    """
    data = form.cleaned_data
    network = data["network"]
    credentials = Credentials(key=data["api_key"], secret=data["api_secret"], passphrase=data["passphrase"])
    try:
        result = verify_credentials(network, credentials, timeout=settings.LNMARKETS_HTTP_TIMEOUT)
    except PermissionDeniedError:
        form.add_error(None, _("This API key may not read the account. Give it at least the account:read scope."))
        return None
    except AuthError:
        form.add_error(
            None, _("LN Markets rejected these credentials: check the API key, the secret and the passphrase.")
        )
        return None
    except NetworkUnreachableError:
        form.add_error(
            "network",
            _("The %(network)s exchange cannot be reached right now. Try again later.") % {"network": network},
        )
        return None
    except LNMarketsError as exc:
        logger.warning("credential verification failed on %s: %s", network, type(exc).__name__)
        form.add_error(None, _("The exchange could not verify these credentials (%(code)s).") % {"code": exc.code})
        return None
    error = "" if result.can_trade else _("This key cannot trade (futures:isolated:write is missing).")
    return Verification(permissions=tuple(result.permissions), error=error)
