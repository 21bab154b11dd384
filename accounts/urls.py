"""URLs of the accounts app: login/logout and the exchange-account pages."""

from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views, views_auth, views_settings

app_name = "accounts"

urlpatterns = [
    path("login/", views_auth.LoginView.as_view(), name="login"),
    path("login/code/", views_auth.login_code, name="login-code"),
    path("two-factor/", views_auth.two_factor_settings, name="two-factor"),
    path("settings/", views_settings.settings_page, name="settings"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("exchange/", views.account_list, name="list"),
    path("exchange/new/", views.account_create, name="create"),
    path("exchange/paper/", views.paper_create, name="paper-create"),
    path("exchange/<int:account_id>/reset/", views.paper_reset, name="paper-reset"),
    path("exchange/<int:account_id>/edit/", views.account_edit, name="edit"),
    path("exchange/<int:account_id>/delete/", views.account_delete, name="delete"),
    path("exchange/<int:account_id>/activate/", views.account_activate, name="activate"),
]
