"""Stored backtests: one run (what to replay, on which history, its progress) and one result per configuration."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models

from accounts.models import ExchangeAccount
from automations.models import Automation


class BacktestRun(models.Model):
    """A backtest the user asked for. ``configs`` are the configurations to compare (JSON of the engine's configs),
    ``settings`` the portfolio and the exchange rules, ``source`` where the price history comes from; ``history``
    holds the packed history once loaded (``backtest.history.pack``) so the run can be replayed again."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        EXCHANGE = "exchange", "Exchange candles"
        CSV = "csv", "CSV upload"
        SCENARIO = "scenario", "Stress scenario"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backtests")
    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="backtests"
    )
    automation = models.ForeignKey(
        Automation, on_delete=models.SET_NULL, null=True, blank=True, related_name="backtests"
    )
    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent
    message = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    source_params = models.JSONField(default=dict)
    configs = models.JSONField(default=list)
    settings = models.JSONField(default=dict)
    history = models.BinaryField(null=True, blank=True, editable=False)
    rows = models.PositiveIntegerField(default=0)
    chart = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class BacktestResult(models.Model):
    """One configuration's outcome (position 0 is the baseline: the same portfolio with no automation)."""

    run = models.ForeignKey(BacktestRun, on_delete=models.CASCADE, related_name="results")
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, blank=True)
    config = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict)
    actions = models.JSONField(default=list)
    chart = models.JSONField(default=dict)

    class Meta:
        ordering: ClassVar[list[str]] = ["run", "position"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["run", "position"], name="unique_backtest_result_position")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.position} {self.label}"
