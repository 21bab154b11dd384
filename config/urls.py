"""Root URL configuration."""

from django.contrib import admin
from django.urls import include, path

from config import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("accounts.urls")),
    path("automations/", include("automations.urls")),
    path("realtime/", include("realtime.urls")),
    path("admin/", admin.site.urls),
]
