"""Automations, the order intents they create, the trades Axisor tracks, and the audit log of every decision."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models

from accounts.models import ExchangeAccount
from automations.kinds import KINDS
from automations.specs import PRICE_AGE_DEFAULT_SECONDS


class Automation(models.Model):
    """One automation of an exchange account. ``config`` is the engine's typed config as JSON (``configs.py``);
    ``memory`` the engine's runtime state; ``version`` guards concurrent evaluations (compare-and-set)."""

    # One choice per registered kind (``automations.kinds``): MARGIN_GUARD, TPSL, AUTO_ENTRY.
    Kind = models.TextChoices("Kind", [(key.upper(), (key, kind.label)) for key, kind in KINDS.items()])  # type: ignore[call-overload]

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        ERROR = "error", "Error"

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    config = models.JSONField()
    memory = models.JSONField(default=dict, blank=True)
    max_price_age_seconds = models.PositiveIntegerField(default=PRICE_AGE_DEFAULT_SECONDS)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    status_message = models.CharField(max_length=300, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    next_evaluation_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["account_id", "name", "id"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["status", "account"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


def new_client_id() -> str:
    """A fresh ``clientId``: ``ax-`` + 32 hex characters (LN Markets accepts up to 64)."""
    return f"ax-{uuid.uuid4().hex}"


class OrderIntent(models.Model):
    """An order Axisor decided to send, written *before* the exchange is called (docs/reliability.md §1).

    The state machine and the argument that no interleaving sends a second order are in
    ``automations/services/intent_machine.py`` and ``docs/exactly-once.md``. In short: ``attempts`` is a fencing
    token (every transition is a compare-and-set on state *and* attempt), each attempt may only be signed until
    ``send_deadline``, and an attempt whose outcome is unknown is re-sent only after ``fence_at``, when the exchange
    can no longer accept its signature, and after the exchange was asked for its effect.
    """

    class State(models.TextChoices):
        CREATED = "created", "Created"
        SUBMITTING = "submitting", "Submitting"
        ACKED = "acked", "Acknowledged"
        REJECTED = "rejected", "Rejected"
        UNKNOWN = "unknown", "Unknown (reconciling)"
        RECONCILED = "reconciled", "Reconciled"

    class Action(models.TextChoices):
        OPEN = "open", "Open trade"
        CLOSE = "close", "Close trade"
        ADD_MARGIN = "add_margin", "Add margin"
        SET_STOPLOSS = "set_stoploss", "Set stop-loss"
        SET_TAKEPROFIT = "set_takeprofit", "Set take-profit"

    TERMINAL: ClassVar[frozenset[str]] = frozenset({State.REJECTED, State.RECONCILED})

    client_id = models.CharField(max_length=64, unique=True, default=new_client_id)
    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="order_intents")
    automation = models.ForeignKey(
        Automation, on_delete=models.SET_NULL, null=True, blank=True, related_name="order_intents"
    )
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="followups")
    action = models.CharField(max_length=16, choices=Action.choices)
    params = models.JSONField(default=dict)
    protective = models.BooleanField(default=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.CREATED)
    attempts = models.PositiveSmallIntegerField(default=0)
    deliveries = models.PositiveSmallIntegerField(default=0)
    trade_id = models.CharField(max_length=64, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The current attempt's signing deadline and fence (see the class docstring).
    send_deadline = models.DateTimeField(null=True, blank=True)
    fence_at = models.DateTimeField(null=True, blank=True)
    # Lease: no delivery is expected to be working on the intent after this time; the sweep re-queues it then.
    next_check_at = models.DateTimeField(null=True, blank=True)
    # Attempts whose request may have left this process (``attempts`` less those refused before sending by the
    # local rate limiter or the send deadline): what the attempt cap counts.
    sends = models.PositiveSmallIntegerField(default=0)
    # Reconciliation look-ups made for the current attempt (the exponent of the retry backoff).
    checks = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["account", "state"]),
            models.Index(fields=["state", "next_check_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.client_id} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL


class TrackedTrade(models.Model):
    """An isolated trade seen on the exchange. ``managed`` is True only for trades Axisor opened (or the user
    opted in to): automations never touch the others."""

    class Origin(models.TextChoices):
        AXISOR = "axisor", "Opened by Axisor"
        EXTERNAL = "external", "Opened outside Axisor"

    class State(models.TextChoices):
        OPEN = "open", "Open (limit)"
        RUNNING = "running", "Running"
        CLOSED = "closed", "Closed"
        CANCELED = "canceled", "Canceled"

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="tracked_trades")
    trade_id = models.CharField(max_length=64)
    client_id = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    managed = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices)
    side = models.CharField(max_length=4)
    quantity = models.PositiveIntegerField()
    entry_price = models.DecimalField(max_digits=14, decimal_places=1)
    margin = models.BigIntegerField()
    leverage = models.DecimalField(max_digits=12, decimal_places=6)
    liquidation = models.DecimalField(max_digits=14, decimal_places=1)
    stoploss = models.DecimalField(max_digits=14, decimal_places=1, default=0)
    takeprofit = models.DecimalField(max_digits=14, decimal_places=1, default=0)
    maintenance_margin = models.BigIntegerField(default=0)
    opening_fee = models.BigIntegerField(default=0)
    pl = models.BigIntegerField(default=0)
    exit_price = models.DecimalField(max_digits=14, decimal_places=1, null=True, blank=True)
    closed_reason = models.CharField(max_length=20, blank=True)
    closed_by_axisor = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-first_seen_at"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["account", "trade_id"], name="unique_tracked_trade")
        ]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["account", "state"])]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} USD ({self.trade_id})"


class AuditEntry(models.Model):
    """One decision or outcome, with the inputs it was taken on. Written for every decision the engine takes."""

    class Event(models.TextChoices):
        DECISION = "decision", "Decision"
        SKIP = "skip", "Skipped"
        ORDER = "order", "Order outcome"
        RECONCILE = "reconcile", "Reconciliation"
        STATUS = "status", "Status change"
        ERROR = "error", "Error"

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        OK = "ok", "OK"
        SKIPPED = "skipped", "Skipped"
        REJECTED = "rejected", "Rejected"
        UNKNOWN = "unknown", "Unknown"
        ERROR = "error", "Error"
        INFO = "info", "Info"

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="audit_entries")
    automation = models.ForeignKey(
        Automation, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    intent = models.ForeignKey(
        OrderIntent, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_entries"
    )
    kind = models.CharField(max_length=16, blank=True)
    event = models.CharField(max_length=12, choices=Event.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    message = models.CharField(max_length=500)
    inputs = models.JSONField(default=dict, blank=True)
    decision = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["account", "-created_at"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.event}: {self.message[:60]}"


class GlobalSwitch(models.Model):
    """The system-wide kill switch (a single row, id 1): when on, no new entry is sent for anyone."""

    kill_switch = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"global kill switch {'ON' if self.kill_switch else 'off'}"

    @classmethod
    def is_on(cls) -> bool:
        return cls.objects.filter(pk=1, kill_switch=True).exists()
