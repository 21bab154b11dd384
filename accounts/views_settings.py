"""The settings page: preferences (language, time zone, display currency), password, and the link to 2FA."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import two_factor
from accounts.forms import PreferencesForm
from accounts.models import User
from accounts.preferences import preferences_update


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    which = request.POST.get("form") if request.method == "POST" else None
    initial = {"language": user.language, "time_zone": user.time_zone, "display_currency": user.display_currency}
    preferences = PreferencesForm(request.POST if which == "preferences" else None, initial=initial)
    password = PasswordChangeForm(user, request.POST if which == "password" else None)
    if which == "preferences" and preferences.is_valid():
        data = preferences.cleaned_data
        preferences_update(
            user=user,
            language=data["language"],
            time_zone=data["time_zone"],
            display_currency=data["display_currency"],
        )
        language = data["language"] or translation.get_language_from_request(request)
        with translation.override(language):
            messages.success(request, _("Settings saved."))
        response = redirect("accounts:settings")
        if data["language"]:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                data["language"],
                max_age=365 * 24 * 3600,
                samesite="Lax",
                secure=request.is_secure(),
            )
        else:
            response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    if which == "password" and password.is_valid():
        password.save()  # the user's live sockets close (realtime.signals) and their other sessions end
        update_session_auth_hash(request, password.user)
        messages.success(request, _("Password changed. Your other sessions and open dashboards were signed out."))
        return redirect("accounts:settings")
    context = {
        "preferences": preferences,
        "password": password,
        "two_factor_on": two_factor.is_enabled(user),
    }
    return render(request, "accounts/settings.html", context)
