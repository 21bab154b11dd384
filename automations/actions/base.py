"""What every order action is made of: typed parameters, the one exchange call, the look-up, the bookkeeping.

An :class:`OrderAction` is one ``OrderIntent.Action``. ``automations.services.execution`` runs the exactly-once
machinery (docs/exactly-once.md) and asks the intent's action only action-specific questions: how to send it, how to
find its effect at the exchange, what to record once it took effect, which follow-up intents complete it. None of
these methods moves the intent's state: that stays with the execution service and ``intent_machine``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lnmarkets.schemas import Trade

if TYPE_CHECKING:
    from accounts.models import ExchangeAccount
    from automations.models import OrderIntent
    from lnmarkets.client import RestClient


@dataclass(frozen=True)
class Found:
    """What a look-up learned: ``done`` (the action took effect, or there is nothing left to do) or ``absent``.
    ``ours`` is False when the effect is provably not this intent's (a close refused because the trade was already
    closed, before any earlier attempt of ours could have closed it)."""

    status: Literal["done", "absent"]
    trade: Trade | None = None
    note: str = ""
    ours: bool = True


class TradeBook(Protocol):
    """Where an action records what it did to a trade: the tracked-trades service
    (``automations.services.trades``), handed in by the execution service so that actions never import services."""

    def upsert(self, account: ExchangeAccount, trade: Trade, *, managed: bool | None = None) -> object: ...

    def mark_closed(
        self, account: ExchangeAccount, trade_id: str, *, closed: Trade | None, by_axisor: bool
    ) -> None: ...

    def fill_exit(self, client: RestClient, account: ExchangeAccount, trade_id: str) -> None: ...


class ActionParamsError(ValueError):
    """The parameters of an order action are invalid (a request, or a stored intent); the message names the field."""


class ActionParams(BaseModel):
    """Typed parameters of one action, stored as ``OrderIntent.params`` JSON (Decimals as strings).

    ``source`` says who asked when it was not an automation ("telegram", "cockpit"); it is kept for the audit only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored form: unset values left out."""
        return self.model_dump(mode="json", exclude_none=True)


P = TypeVar("P", bound=ActionParams)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ())) or "params"
    return f"{where}: {error.get('msg', 'invalid')}"


def decimal_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def running_trade(client: RestClient, trade_id: str) -> Trade | None:
    """The running trade ``trade_id`` of the client's account, or None when it no longer runs (one GET)."""
    return next((t for t in client.isolated_trades_running_list(priority="high") if t.id == trade_id), None)


class OrderAction(Generic[P]):
    """One order action. Subclasses set the class attributes and implement ``send`` and ``reconcile``.

    * ``fence_at_once``: an unknown attempt may be re-sent as soon as the look-up proves it absent (a close: a trade
      closes once at the exchange whatever we send).
    * ``refusal_may_be_done``: a 400/404 may mean the effect is already there (the trade is closed, the value set);
      the execution then looks before calling it a failure. False for an open (a refusal is a refusal).
    """

    key: ClassVar[str]
    label: ClassVar[str]
    params_type: type[P]
    fence_at_once: ClassVar[bool] = False
    refusal_may_be_done: ClassVar[bool] = True
    needs_trade: ClassVar[bool] = True

    def parse(self, data: object) -> P:
        """Validate stored or requested parameters; raises ``ActionParamsError`` naming the field."""
        if isinstance(data, BaseModel):
            data = data.model_dump()
        if not isinstance(data, Mapping):
            raise ActionParamsError("params: must be an object")
        try:
            return self.params_type.model_validate(dict(data))
        except ValidationError as exc:
            raise ActionParamsError(_first_error(exc)) from exc

    def send(self, client: RestClient, intent: OrderIntent, params: P) -> Trade:
        """The one exchange call of the intent (signed with its priority). Raises the gateway's typed errors."""
        raise NotImplementedError

    def reconcile(self, client: RestClient, intent: OrderIntent, params: P) -> Found:
        """Look on the exchange for the intent's effect. GETs only; never sends an order."""
        raise NotImplementedError

    def before_send(self, client: RestClient, intent: OrderIntent, params: P) -> P | Found:
        """Last reads before the claim: new parameters to store (e.g. what an ambiguous answer will be checked
        against), or a ``Found`` when nothing is left to do. Raises the gateway's read errors."""
        return params

    def bookkeeping(self, book: TradeBook, intent: OrderIntent, params: P, found: Found) -> None:
        """Record the effect (inside the settling transaction, no I/O): by default refresh the tracked trade."""
        if found.trade is not None:
            book.upsert(intent.account, found.trade)

    def after_settle(self, book: TradeBook, client: RestClient, intent: OrderIntent, found: Found) -> None:
        """Bookkeeping that may need the exchange, after the terminal state is written (its failure is logged)."""

    def followups(self, intent: OrderIntent, params: P, trade: Trade | None) -> list[OrderIntent]:
        """Unsaved intents that complete this one (saved in the settling transaction)."""
        return []
