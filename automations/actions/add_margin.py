"""Add margin to a running trade; the margin before the addition is stored first, so an ambiguous answer can be
settled by reading the trade."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext_noop
from pydantic import Field

from automations.actions.base import ActionParams, Found, OrderAction, running_trade

if TYPE_CHECKING:
    from automations.models import OrderIntent
    from lnmarkets.client import RestClient
    from lnmarkets.schemas import Trade


class AddMarginParams(ActionParams):
    amount: int = Field(gt=0)
    margin_before: int | None = Field(default=None, ge=0)


class AddMargin(OrderAction[AddMarginParams]):
    key: ClassVar[str] = "add_margin"
    label: ClassVar[str] = gettext_noop("Add margin")
    params_type = AddMarginParams

    def send(self, client: RestClient, intent: OrderIntent, params: AddMarginParams) -> Trade:
        return client.isolated_trade_add_margin(intent.trade_id, params.amount, priority="high")

    def reconcile(self, client: RestClient, intent: OrderIntent, params: AddMarginParams) -> Found:
        running = running_trade(client, intent.trade_id)
        if running is None:
            return Found("done", note="trade no longer running; nothing left to change")
        before = running.margin if params.margin_before is None else params.margin_before
        return Found("done", running) if running.margin >= before + params.amount else Found("absent", running)

    def before_send(self, client: RestClient, intent: OrderIntent, params: AddMarginParams) -> AddMarginParams | Found:
        if params.margin_before is not None:
            return params
        running = running_trade(client, intent.trade_id)
        if running is None:
            return Found("done", note="trade no longer running; no margin added", ours=False)
        return params.model_copy(update={"margin_before": int(running.margin)})


ACTION = AddMargin()
