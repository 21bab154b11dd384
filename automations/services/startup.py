"""Start-up of the automation runner: no new entries until every account has been reconciled (T10)."""

from __future__ import annotations

import logging

from accounts.crypto import CredentialDecryptionError
from accounts.models import ExchangeAccount
from automations.services.trades import account_reconcile
from lnmarkets.exceptions import LNMarketsError

logger = logging.getLogger(__name__)

STARTUP_HALT = "awaiting start-up reconciliation"


def accounts_reconcile_at_startup() -> dict[str, int]:
    """Halt entries on every enabled account, then reconcile each one (which lifts the halt on success).

    An account that cannot be reconciled now stays halted for entries (protective work goes on); the periodic
    reconciliation retries it. Returns counts of reconciled and failed accounts.
    """
    accounts = list(ExchangeAccount.objects.filter(is_enabled=True))
    ExchangeAccount.objects.filter(pk__in=[a.pk for a in accounts]).update(
        entries_halted=True, halt_reason=STARTUP_HALT
    )
    done = failed = 0
    for account in accounts:
        try:
            account_reconcile(account_id=account.pk)
            done += 1
        except (LNMarketsError, CredentialDecryptionError) as exc:
            failed += 1
            logger.warning("start-up reconciliation of account %s failed: %s", account.pk, type(exc).__name__)
    return {"reconciled": done, "failed": failed}
