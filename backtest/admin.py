from __future__ import annotations

from typing import ClassVar

from django.contrib import admin

from backtest.models import BacktestResult, BacktestRun


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin[BacktestRun]):
    list_display = ("id", "name", "owner", "status", "progress", "source", "rows", "created_at")
    list_filter = ("status", "source")
    list_select_related = ("owner",)
    raw_id_fields = ("owner", "account", "automation")
    readonly_fields = ("status", "progress", "message", "rows", "started_at", "finished_at")
    exclude: ClassVar[list[str]] = ["chart"]


@admin.register(BacktestResult)
class BacktestResultAdmin(admin.ModelAdmin[BacktestResult]):
    list_display = ("id", "run", "position", "label", "kind")
    raw_id_fields = ("run",)
    exclude: ClassVar[list[str]] = ["actions", "chart"]
