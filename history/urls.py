"""URLs of the history app (mounted at ``/history/``)."""

from django.urls import path

from history import views

app_name = "history"

urlpatterns = [
    path("", views.history_list, name="list"),
    path("export.csv", views.history_csv, name="csv"),
    path("sync/", views.history_sync_now, name="sync"),
    path("performance/", views.performance, name="performance"),
]
