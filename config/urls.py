"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("help/", views.help_page, name="help"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/", include("accounts.urls")),
    path("automations/", include("automations.urls")),
    path("realtime/", include("realtime.urls")),
    path("history/", include("history.urls")),
    path("backtests/", include("backtest.urls")),
    path("notifications/", include("notifications.urls")),
    path("admin/login/", views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
]
