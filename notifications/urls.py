"""URLs of the notifications app."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.channel_list, name="list"),
    path("channels/new/", views.channel_create, name="create"),
    path("preferences/", views.preferences, name="preferences"),
    path("channels/<int:channel_id>/events/", views.channel_events, name="events"),
    path("channels/<int:channel_id>/test/", views.channel_test, name="test"),
    path("channels/<int:channel_id>/link/", views.channel_link, name="link"),
    path("channels/<int:channel_id>/delete/", views.channel_delete, name="delete"),
    path("channels/<int:channel_id>/log/", views.channel_log, name="log"),
    path("telegram/webhook", views.telegram_webhook, name="telegram-webhook"),
]
