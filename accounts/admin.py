"""Admin for operators: users and exchange accounts. No plaintext secret anywhere; the key shows as ••••last4.

Exchange accounts are added through the product's own pages (which verify the credentials with the exchange), so
the admin cannot add one or edit credentials, and no encrypted column is displayed, searched or filtered.
Non-superuser staff only see their own accounts.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ExchangeAccount, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):  # type: ignore[type-arg]
    pass


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(admin.ModelAdmin[ExchangeAccount]):
    list_display = ("label", "owner", "network", "masked_key", "is_active", "is_enabled", "last_verified_at")
    list_filter = ("network", "is_active", "is_enabled")
    search_fields = ("label", "owner__username")
    list_select_related = ("owner",)
    fields = (
        "owner",
        "label",
        "network",
        "masked_key",
        "masked_secret",
        "masked_passphrase",
        "key_fingerprint",
        "is_active",
        "is_enabled",
        "permissions",
        "last_verified_at",
        "verification_error",
        "created_at",
        "updated_at",
    )
    readonly_fields = (
        "owner",
        "network",
        "masked_key",
        "masked_secret",
        "masked_passphrase",
        "key_fingerprint",
        "is_active",
        "permissions",
        "last_verified_at",
        "verification_error",
        "created_at",
        "updated_at",
    )

    @admin.display(description="API key")
    def masked_key(self, obj: ExchangeAccount) -> str:
        return obj.masked_key

    @admin.display(description="API secret")
    def masked_secret(self, obj: ExchangeAccount) -> str:
        return "•••••••• (encrypted)"

    @admin.display(description="Passphrase")
    def masked_passphrase(self, obj: ExchangeAccount) -> str:
        return "•••••••• (encrypted)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExchangeAccount]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(owner_id=request.user.pk)
