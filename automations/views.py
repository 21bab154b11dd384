"""Automation pages. Thin: parse input, call one service or selector, render. Every lookup is owner-scoped (404);
every mutation is a POST with CSRF and ends in a redirect with a message."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.chosen import remember_account
from accounts.models import User
from accounts.selectors import exchange_account_get_for_user
from automations import selectors
from automations.configs import config_from_json
from automations.forms import AuditFilterForm, AutomationForm, SwitchForm, form_class_for
from automations.kinds import KINDS, kind_for
from automations.services import management
from automations.services.preview import Explained, explain
from automations.specs import SpecError
from config.params import parse_id

AUDIT_PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _form_for(kind: str) -> type[AutomationForm]:
    form_class = form_class_for(kind)
    if form_class is None:
        raise Http404("unknown automation kind")
    return form_class


@login_required
@require_GET
def automation_list(request: HttpRequest) -> HttpResponse:
    accounts = selectors.accounts_with_automations_for_user(user=_user(request))
    return render(
        request,
        "automations/list.html",
        {"accounts": accounts, "global_switch": selectors.global_switch_get()},
    )


@login_required
@require_GET
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = exchange_account_get_for_user(user=_user(request), account_id=account_id)
    remember_account(request, account.pk)  # the account chosen here is the one dashboard and history show
    return render(
        request,
        "automations/account.html",
        {
            "account": account,
            "automations": selectors.automation_list_for_user(user=_user(request), account=account),
            "trades": selectors.tracked_trades_open_for_account(account=account),
            "global_switch": selectors.global_switch_get(),
        },
    )


@login_required
@require_GET
def automation_choose_kind(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "automations/choose_kind.html",
        {"kinds": list(KINDS.values()), "account_id": parse_id(request.GET.get("account", ""))},
    )


@login_required
@require_http_methods(["GET", "POST"])
def automation_create(request: HttpRequest, kind: str) -> HttpResponse:
    form_class = _form_for(kind)
    account = None
    account_id = parse_id(request.GET.get("account", ""))
    if account_id is not None:
        account = exchange_account_get_for_user(user=_user(request), account_id=account_id)
    if request.method == "POST" and "_refresh" in request.POST:
        form = form_class(None, user=_user(request), account=account, refresh=request.POST)
    else:
        form = form_class(request.POST if request.method == "POST" else None, user=_user(request), account=account)
    if request.method == "POST" and "_refresh" not in request.POST and form.is_valid() and form.config is not None:
        data = form.cleaned_data
        automation = management.automation_create(
            account=data["account"],
            name=data["name"],
            kind=form_class.kind,
            config=form.config,
            max_price_age_seconds=data["max_price_age_seconds"],
        )
        messages.success(request, _("Automation “%(name)s” created and active.") % {"name": automation.name})
        return redirect("automations:account", account_id=automation.account_id)
    context = {"form": form, "automation": None, "kind_label": _label(kind), "explained": _explained(form)}
    context["describe_url"] = reverse("automations:describe", args=[kind])
    return render(request, "automations/form.html", context)


def _explained(form: AutomationForm, *, live: bool = False) -> Explained:
    """The sentence for the form's values (a saved automation's or the submitted ones), when they are valid."""
    config = form.config
    account = form.cleaned_data.get("account") if form.is_bound and hasattr(form, "cleaned_data") else None
    if config is None and not form.is_bound:
        probe = type(form)(form.initial_values(), user=form.user, automation=form.automation)
        if probe.is_valid():
            config, account = probe.config, probe.cleaned_data.get("account")
    if account is None and form.automation is not None:
        account = form.automation.account
    return explain(config, account, live=live)


@login_required
@require_POST
def automation_describe(request: HttpRequest, kind: str) -> HttpResponse:
    """The “What it will do” box for the values typed so far (the form's script asks for it as they change)."""
    form_class = _form_for(kind)
    automation = None
    automation_id = parse_id(request.GET.get("automation", ""))
    if automation_id is not None:
        automation = selectors.automation_get_for_user(user=_user(request), automation_id=automation_id)
        if automation.kind != kind:
            raise Http404("kind mismatch")
    form = form_class(request.POST, user=_user(request), automation=automation)
    form.is_valid()
    return render(request, "automations/_summary.html", {"explained": _explained(form, live=True)})


def _label(kind: str) -> str:
    return _(kind_for(kind).label)  # noqa: INT001


@login_required
@require_http_methods(["GET", "POST"])
def automation_edit(request: HttpRequest, automation_id: int) -> HttpResponse:
    automation = selectors.automation_get_for_user(user=_user(request), automation_id=automation_id)
    form_class = _form_for(automation.kind)
    if request.method == "POST" and "_refresh" in request.POST:
        form = form_class(None, user=_user(request), automation=automation, refresh=request.POST)
    else:
        form = form_class(
            request.POST if request.method == "POST" else None, user=_user(request), automation=automation
        )
    if request.method == "POST" and "_refresh" not in request.POST and form.is_valid() and form.config is not None:
        data = form.cleaned_data
        management.automation_update(
            automation=automation,
            name=data["name"],
            config=form.config,
            max_price_age_seconds=data["max_price_age_seconds"],
        )
        messages.success(request, _("Automation “%(name)s” saved.") % {"name": automation.name})
        return redirect("automations:account", account_id=automation.account_id)
    return render(
        request,
        "automations/form.html",
        {
            "form": form,
            "automation": automation,
            "kind_label": _(automation.get_kind_display()),
            "explained": _explained(form),
            "describe_url": reverse("automations:describe", args=[automation.kind]) + f"?automation={automation.pk}",
        },
    )


@login_required
@require_POST
def automation_pause(request: HttpRequest, automation_id: int) -> HttpResponse:
    automation = selectors.automation_get_for_user(user=_user(request), automation_id=automation_id)
    try:
        management.automation_pause(automation=automation)
    except management.AutomationStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("“%(name)s” paused: it takes no decision until resumed.") % {"name": automation.name}
        )
    return redirect("automations:account", account_id=automation.account_id)


@login_required
@require_POST
def automation_resume(request: HttpRequest, automation_id: int) -> HttpResponse:
    automation = selectors.automation_get_for_user(user=_user(request), automation_id=automation_id)
    try:
        management.automation_resume(automation=automation)
    except management.AutomationStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("“%(name)s” is active again.") % {"name": automation.name})
    return redirect("automations:account", account_id=automation.account_id)


@login_required
@require_http_methods(["GET", "POST"])
def automation_delete(request: HttpRequest, automation_id: int) -> HttpResponse:
    """GET shows a confirmation page (nothing changes); POST deletes."""
    automation = selectors.automation_get_for_user(user=_user(request), automation_id=automation_id)
    if request.method == "POST":
        account_id, name = automation.account_id, automation.name
        management.automation_delete(automation=automation)
        messages.success(request, _("Automation “%(name)s” deleted.") % {"name": name})
        return redirect("automations:account", account_id=account_id)
    return render(request, "automations/confirm_delete.html", {"automation": automation})


@login_required
@require_GET
def automation_preview(request: HttpRequest, automation_id: int) -> HttpResponse:
    """What the automation would decide now on the live price. Nothing is sent or stored."""
    automation = selectors.automation_get_for_user(user=_user(request), automation_id=automation_id)
    preview = management.automation_preview_now(automation=automation, now=timezone.now())
    explained = Explained()
    if preview.market is not None:
        try:
            config = config_from_json(automation.kind, automation.config)
        except SpecError:
            pass
        else:
            from automations.describe import summary, triggers_now
            from automations.services.evaluation import account_state_of

            trades = account_state_of(automation.account).trades
            explained = Explained(
                summary(config), tuple(triggers_now(config, preview.market, trades)), account=automation.account
            )
    context = {"automation": automation, "preview": preview, "explained": explained}
    return render(request, "automations/preview.html", context)


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None, user=_user(request))
    entries = selectors.audit_entries_for_user(user=_user(request), filters=form.filters())
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "automations/log.html", {"form": form, "page": page})


@login_required
@require_POST
def account_kill_switch(request: HttpRequest, account_id: int) -> HttpResponse:
    account = exchange_account_get_for_user(user=_user(request), account_id=account_id)
    form = SwitchForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say whether to turn the kill switch on or off."))
    else:
        management.account_kill_switch_set(account=account, on=form.on)
        if form.on:
            messages.success(request, _("Kill switch on: no new entries on this account. Closes still run."))
        else:
            messages.success(request, _("Kill switch off: entries resume after the next reconciliation."))
    return redirect("automations:account", account_id=account.pk)


@login_required
@require_POST
def account_manage_external(request: HttpRequest, account_id: int) -> HttpResponse:
    account = exchange_account_get_for_user(user=_user(request), account_id=account_id)
    form = SwitchForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say whether automations may manage trades opened outside Axisor."))
    else:
        management.account_manage_external_set(account=account, on=form.on)
        if form.on:
            messages.success(request, _("Automations may now manage trades opened outside Axisor on this account."))
        else:
            messages.success(request, _("Trades opened outside Axisor are shown but no longer managed."))
    return redirect("automations:account", account_id=account.pk)


@login_required
@require_POST
def global_kill_switch(request: HttpRequest) -> HttpResponse:
    """Staff only: the system-wide kill switch (no new entries for anyone)."""
    if not _user(request).is_staff:
        raise PermissionDenied
    form = SwitchForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("The global kill switch was not changed: give on or off and a reason under 300 characters.")
        )
    else:
        management.global_kill_switch_set(on=form.on, reason=form.cleaned_data["reason"], actor=_user(request))
        if form.on:
            messages.success(request, _("Global kill switch on: no new entries for anyone. Closes still run."))
        else:
            messages.success(request, _("Global kill switch off: entries resume."))
    return redirect("automations:list")
