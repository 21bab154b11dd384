"""Login (password, then the authenticator code when 2FA is on) and the two-factor settings page.

Thin: the second factor's rules live in ``accounts.two_factor``; login throttling is django-axes (its backend
refuses a locked-out username + address before the password is checked, and its middleware renders the lockout
page with status 429).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from accounts import two_factor
from accounts.forms import OtpCodeForm, TwoFactorDisableForm
from accounts.models import User
from config.params import safe_redirect_target

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """The password step; with 2FA on, the user is not logged in yet but sent to the code step."""

    template_name = "accounts/login.html"

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if not isinstance(user, User) or not two_factor.is_enabled(user):
            return super().form_valid(form)
        pending = two_factor.PendingLogin(
            user_id=user.pk,
            backend=str(getattr(user, "backend", "django.contrib.auth.backends.ModelBackend")),
            next_url=self.get_success_url(),
            started=time.time(),
        )
        two_factor.pending_save(self.request.session, pending)
        return redirect("accounts:login-code")


@sensitive_post_parameters("otp_token")
@never_cache
@require_http_methods(["GET", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step: the authenticator code of the user whose password was right a moment ago."""
    pending = two_factor.pending_load(request.session)
    user = User.objects.filter(pk=pending.user_id, is_active=True).first() if pending else None
    if pending is None or user is None:
        messages.error(request, _("Log in again: the sign-in expired or had too many wrong codes."))
        return redirect("accounts:login")
    form = OtpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = two_factor.verify_code(user, form.cleaned_data["otp_token"], purpose="login")
        if device is not None:
            two_factor.pending_clear(request.session)
            auth_login(request, user, backend=pending.backend)
            otp_login(request, device)  # type: ignore[no-untyped-call]
            target = safe_redirect_target(pending.next_url, host=request.get_host(), require_https=request.is_secure())
            return HttpResponseRedirect(target or "/")
        two_factor.pending_save(request.session, replace(pending, failures=pending.failures + 1))
        form.add_error("otp_token", _("This code is not valid now. Wait for the next one and try again."))
    return render(request, "accounts/login_code.html", {"form": form})


@sensitive_post_parameters("otp_token", "password")
@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    """Turn 2FA on (start, scan, confirm with a code) or off (password and a code)."""
    user = request.user
    assert isinstance(user, User)
    action = request.POST.get("action") if request.method == "POST" else None
    confirm_form = OtpCodeForm(request.POST if action == "confirm" else None)
    disable_form = TwoFactorDisableForm(request.POST if action == "disable" else None, user=user)
    enabled = two_factor.is_enabled(user)
    if action == "start" and not enabled:
        two_factor.setup_start(user)
        return redirect("accounts:two-factor")
    if action == "confirm" and not enabled and confirm_form.is_valid():
        device = two_factor.setup_confirm(user, confirm_form.cleaned_data["otp_token"])
        if device is not None:
            otp_login(request, device)  # type: ignore[no-untyped-call]
            messages.success(request, _("Two-factor authentication is on."))
            return redirect("accounts:two-factor")
        confirm_form.add_error("otp_token", _("This code does not match. Check the app's clock and try again."))
    if action == "disable" and enabled and disable_form.is_valid():
        two_factor.disable(user)
        messages.success(request, _("Two-factor authentication is off."))
        return redirect("accounts:two-factor")
    setup = None if enabled else two_factor.setup_device(user)
    context = {
        "enabled": enabled,
        "setup": setup,
        "qr": two_factor.qr_svg(setup, user) if setup else "",
        "secret": two_factor.secret_base32(setup) if setup else "",
        "confirm_form": confirm_form,
        "disable_form": disable_form,
    }
    return render(request, "accounts/two_factor.html", context)
