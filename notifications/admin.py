from django.contrib import admin

from notifications.models import BotCommandLog, Channel, DeliveryLog, Notification


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin[Channel]):
    list_display = ("name", "owner", "kind", "is_enabled", "verified")
    exclude = ("secret_encrypted", "target_encrypted")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    list_display = ("created_at", "channel", "event", "status", "attempts")
    list_filter = ("status", "event")


@admin.register(DeliveryLog)
class DeliveryLogAdmin(admin.ModelAdmin[DeliveryLog]):
    list_display = ("created_at", "channel", "attempt", "status", "detail")


@admin.register(BotCommandLog)
class BotCommandLogAdmin(admin.ModelAdmin[BotCommandLog]):
    list_display = ("created_at", "chat_id", "user", "command", "result")
