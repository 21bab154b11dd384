"""Paper accounts in one click: credentials created at the local LN Markets simulator through its control API.

The control token (``settings.SIMULATOR_CONTROL_TOKEN``) stays in this process: the browser only ever sends a
label and a starting balance. Only the ``simulator`` network has paper accounts; without a token (a deployment
with no simulator) the feature is off and the pages say so.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services
from accounts.models import ExchangeAccount, Network, User
from lnmarkets.networks import network_urls
from lnmarkets.simulator.client import ControlClient, ControlError

logger = logging.getLogger(__name__)

MIN_BALANCE = 10_000
MAX_BALANCE = 100_000_000_000  # 1 000 BTC
DEFAULT_BALANCE = 1_000_000
CONTROL_TIMEOUT = 5.0


class PaperError(Exception):
    """The simulator could not be reached or refused: a message for the user, never the token or a URL."""


def paper_available() -> bool:
    """One-click paper accounts need the simulator's control token in this process."""
    return bool(settings.SIMULATOR_CONTROL_TOKEN)


def _control() -> ControlClient:
    if not paper_available():
        raise PaperError(_("Paper accounts are not available here: no local simulator is configured."))
    rest = urlsplit(network_urls(Network.SIMULATOR).rest)
    return ControlClient(f"{rest.scheme}://{rest.netloc}", settings.SIMULATOR_CONTROL_TOKEN, timeout=CONTROL_TIMEOUT)


def paper_account_create(*, owner: User, label: str, balance: int) -> ExchangeAccount:
    """Create a simulator account holding ``balance`` sats with a trading key, and store it as ``owner``'s paper
    exchange account (the first account becomes the active one)."""
    control = _control()
    try:
        sim = control.create_account(balance=balance)
    except (ControlError, OSError) as exc:
        logger.warning("paper account: the simulator refused or is unreachable (%s)", type(exc).__name__)
        raise PaperError(_("The local simulator did not answer. Is it running? Try again in a moment.")) from exc
    finally:
        control.close()
    account = services.exchange_account_create(
        owner=owner,
        label=label,
        network=Network.SIMULATOR,
        api_key=sim.key,
        api_secret=sim.secret,
        passphrase=sim.passphrase,
        verification=services.Verification(permissions=tuple(sim.scopes)),
    )
    # The dashboard shows the balance at once, before the first reconciliation reads it from the simulator.
    ExchangeAccount.objects.filter(pk=account.pk).update(balance=sim.balance, balance_updated_at=timezone.now())
    account.refresh_from_db()
    return account


def paper_account_reset(*, account: ExchangeAccount, balance: int) -> int:
    """Start a paper account again: its running trades closed at market, open orders canceled, balance set.
    Returns the number of trades closed or canceled. Raises ``PaperError`` for a non-paper account."""
    if not account.is_paper:
        raise PaperError(_("Only a paper account can be reset."))
    control = _control()
    try:
        key = services.credentials_for_signing(account_id=account.pk).key
        sim_account = control.account_of_key(key)
        result = control.reset_account(str(sim_account["id"]), balance)
    except ControlError as exc:
        if exc.status == 404:
            raise PaperError(
                _("The simulator no longer knows this account's key. Delete it and add a new paper account.")
            ) from exc
        raise PaperError(_("The local simulator did not answer. Is it running? Try again in a moment.")) from exc
    except OSError as exc:
        raise PaperError(_("The local simulator did not answer. Is it running? Try again in a moment.")) from exc
    finally:
        control.close()
    ExchangeAccount.objects.filter(pk=account.pk).update(balance=balance, balance_updated_at=timezone.now())
    logger.info("paper account %s reset", account.pk)
    return len(result.get("closed", [])) + len(result.get("canceled", []))
