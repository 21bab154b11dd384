"""Exchange-account pages. Thin: parse input, call one service, render. Every lookup is owner-scoped (404)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts import paper, selectors, services
from accounts.forms import ExchangeAccountForm, PaperAccountForm, PaperResetForm, paper_label_suggestion
from accounts.models import User
from accounts.stream_status import stream_status_label
from accounts.verification import verify_form_credentials
from config.params import safe_redirect_target

SECRET_FIELDS = ("api_key", "api_secret", "passphrase")


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = list(selectors.exchange_account_list_for_user(user=_user(request)))
    rows = [(a, *stream_status_label(a.pk)) for a in accounts]  # the private stream's badge
    return render(
        request, "accounts/list.html", {"accounts": accounts, "rows": rows, "paper_available": paper.paper_available()}
    )


@sensitive_post_parameters(*SECRET_FIELDS)
@sensitive_variables("form", "api_key", "api_secret", "passphrase")
@login_required
@require_http_methods(["GET", "POST"])
def account_create(request: HttpRequest) -> HttpResponse:
    form = ExchangeAccountForm(request.POST or None, owner=_user(request))
    if request.method == "POST" and form.is_valid():
        verification = verify_form_credentials(form)
        if verification is not None:
            data = form.cleaned_data
            account = services.exchange_account_create(
                owner=_user(request),
                label=data["label"],
                network=data["network"],
                api_key=data["api_key"],
                api_secret=data["api_secret"],
                passphrase=data["passphrase"],
                verification=verification,
            )
            messages.success(request, _("Account “%(label)s” added.") % {"label": account.label})
            return redirect("accounts:list")
    return render(request, "accounts/form.html", {"form": form, "account": None})


@sensitive_post_parameters(*SECRET_FIELDS)
@sensitive_variables("form", "api_key", "api_secret", "passphrase")
@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    account = selectors.exchange_account_get_for_user(user=_user(request), account_id=account_id)
    form = ExchangeAccountForm(request.POST or None, owner=_user(request), instance=account)
    if request.method == "POST" and form.is_valid():
        verification = verify_form_credentials(form) if form.credentials_changed else None
        if verification is not None or not form.credentials_changed:
            data = form.cleaned_data
            services.exchange_account_update(
                account=account,
                label=data["label"],
                network=data["network"],
                api_key=data["api_key"],
                api_secret=data["api_secret"],
                passphrase=data["passphrase"],
                verification=verification,
            )
            messages.success(request, _("Account “%(label)s” saved.") % {"label": account.label})
            return redirect("accounts:list")
    return render(request, "accounts/form.html", {"form": form, "account": account})


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    account = selectors.exchange_account_get_for_user(user=_user(request), account_id=account_id)
    if request.method == "POST":
        label = account.label
        services.exchange_account_delete(account=account)
        messages.success(request, _("Account “%(label)s” deleted.") % {"label": label})
        return redirect("accounts:list")
    return render(request, "accounts/confirm_delete.html", {"account": account})


@login_required
@require_POST
def account_activate(request: HttpRequest, account_id: int) -> HttpResponse:
    account = selectors.exchange_account_get_for_user(user=_user(request), account_id=account_id)
    services.exchange_account_activate(account=account)
    messages.success(request, _("“%(label)s” is now the active account.") % {"label": account.label})
    target = safe_redirect_target(request.POST.get("next"), host=request.get_host(), require_https=request.is_secure())
    if target is not None:
        # A URL, never a URL name or a model: redirect("foo") would try to reverse "foo" (a 500).
        return HttpResponseRedirect(target)
    return redirect("accounts:list")


@login_required
@require_http_methods(["GET", "POST"])
def paper_create(request: HttpRequest) -> HttpResponse:
    """“Add paper account”: the simulator creates the credentials server-side; the user never sees the token."""
    user = _user(request)
    initial = {"label": paper_label_suggestion(user), "balance": paper.DEFAULT_BALANCE}
    form = PaperAccountForm(request.POST or None, owner=user, initial=initial)
    if request.method == "POST" and paper.paper_available() and form.is_valid():
        try:
            account = paper.paper_account_create(
                owner=user, label=form.cleaned_data["label"], balance=form.cleaned_data["balance"]
            )
        except paper.PaperError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("Paper account “%(label)s” added with %(balance)s sats.")
                % {"label": account.label, "balance": number_format(form.cleaned_data["balance"], force_grouping=True)},
            )
            return redirect("accounts:list")
    return render(request, "accounts/paper_form.html", {"form": form, "paper_available": paper.paper_available()})


@login_required
@require_http_methods(["GET", "POST"])
def paper_reset(request: HttpRequest, account_id: int) -> HttpResponse:
    account = selectors.exchange_account_get_for_user(user=_user(request), account_id=account_id)
    if not account.is_paper:
        raise Http404
    form = PaperResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            paper.paper_account_reset(account=account, balance=form.cleaned_data["balance"])
        except paper.PaperError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                _("“%(label)s” starts again with %(balance)s sats; its trades are closed.")
                % {"label": account.label, "balance": number_format(form.cleaned_data["balance"], force_grouping=True)},
            )
            return redirect("accounts:list")
    return render(request, "accounts/paper_reset.html", {"form": form, "account": account})
