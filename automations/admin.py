"""Admin for operators: automations, order intents, tracked trades, the audit log and the global kill switch.

What the admin must not break is kept read-only: order intents and audit entries are records of what happened
(no add, change or delete); an automation's config and memory are shown as JSON but edited only through the product's
forms (which validate them) and its status only through the pause/resume actions (compare-and-set services); of a
tracked trade only ``managed`` can change. Changes go through ``automations.services.management`` so each one writes
an audit entry. Non-superuser staff only see rows of their own exchange accounts.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import User
from automations import describe
from automations.configs import config_from_json
from automations.models import AuditEntry, Automation, GlobalSwitch, OrderIntent, TrackedTrade
from automations.services import management
from automations.specs import SpecError


def _pretty_json(value: object) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


class OwnRowsMixin:
    """Non-superuser staff see only the rows of their own exchange accounts (``account__owner``)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        if request.user.is_superuser:
            return queryset
        return queryset.filter(account__owner_id=request.user.pk)


class ReadOnlyAdmin(OwnRowsMixin, admin.ModelAdmin[Model]):
    """Visible to whoever has the view permission; nobody can add, change or delete."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Automation)
class AutomationAdmin(OwnRowsMixin, admin.ModelAdmin[Automation]):
    list_display = ("name", "account", "kind", "status", "last_evaluated_at")
    list_filter = ("kind", "status")
    search_fields = ("name", "account__label")
    list_select_related = ("account",)
    fields = (
        "name",
        "account",
        "kind",
        "status",
        "status_message",
        "max_price_age_seconds",
        "summary",
        "config_json",
        "memory_json",
        "version",
        "last_evaluated_at",
        "next_evaluation_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "account",
        "kind",
        "status",
        "status_message",
        "summary",
        "config_json",
        "memory_json",
        "version",
        "last_evaluated_at",
        "next_evaluation_at",
        "created_at",
        "updated_at",
    )
    actions = ("pause_selected", "resume_selected")

    @admin.display(description="what it does")
    def summary(self, obj: Automation) -> str:
        """Its kind's sentence (``automations.kinds``), or why its stored settings cannot be read."""
        try:
            return describe.summary(config_from_json(obj.kind, obj.config))
        except SpecError as exc:
            return f"Invalid settings: {exc}"

    @admin.display(description="config")
    def config_json(self, obj: Automation) -> SafeString:
        return _pretty_json(obj.config)

    @admin.display(description="memory")
    def memory_json(self, obj: Automation) -> SafeString:
        return _pretty_json(obj.memory)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Created through the product's forms, which validate the config against LN Markets' rules.
        return False

    @admin.action(description="Pause selected automations")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Automation]) -> None:
        self._apply(request, queryset, management.automation_pause, "paused")

    @admin.action(description="Resume selected automations")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Automation]) -> None:
        self._apply(request, queryset, management.automation_resume, "resumed")

    def _apply(self, request: HttpRequest, queryset: QuerySet[Automation], service: Any, verb: str) -> None:
        done = 0
        for automation in queryset:
            try:
                service(automation=automation)
            except management.AutomationStateError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                done += 1
        self.message_user(request, f"{done} automation(s) {verb}.")


@admin.register(OrderIntent)
class OrderIntentAdmin(ReadOnlyAdmin):
    list_display = ("client_id", "account", "action", "state", "attempts", "trade_id", "created_at")
    list_filter = ("state", "action")
    search_fields = ("client_id", "trade_id")
    list_select_related = ("account", "automation")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "automation", "kind", "event", "outcome", "message")
    list_filter = ("event", "outcome", "kind")
    search_fields = ("message",)
    list_select_related = ("account", "automation")


@admin.register(TrackedTrade)
class TrackedTradeAdmin(OwnRowsMixin, admin.ModelAdmin[TrackedTrade]):
    list_display = ("trade_id", "account", "origin", "managed", "state", "side", "quantity", "entry_price")
    list_filter = ("state", "origin", "managed")
    search_fields = ("trade_id", "client_id")
    list_select_related = ("account",)

    def get_readonly_fields(self, request: HttpRequest, obj: TrackedTrade | None = None) -> list[str]:
        return [f.name for f in TrackedTrade._meta.concrete_fields if f.name != "managed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TrackedTrade | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: TrackedTrade, form: Any, change: bool) -> None:
        # Only ``managed`` is editable: write it through the service so the change is audited.
        management.tracked_trade_managed_set(trade=obj, on=obj.managed)


@admin.register(GlobalSwitch)
class GlobalSwitchAdmin(admin.ModelAdmin[GlobalSwitch]):
    list_display = ("__str__", "kill_switch", "reason", "updated_at")
    fields = ("kill_switch", "reason", "updated_at")
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row (id 1) only: ``GlobalSwitch.is_on`` reads that row.
        return super().has_add_permission(request) and not GlobalSwitch.objects.filter(pk=1).exists()

    def has_delete_permission(self, request: HttpRequest, obj: GlobalSwitch | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: GlobalSwitch, form: Any, change: bool) -> None:
        switch = management.global_kill_switch_set(
            on=obj.kill_switch,
            reason=obj.reason,
            actor=request.user if isinstance(request.user, User) else None,
        )
        obj.pk = switch.pk
        obj.updated_at = switch.updated_at
