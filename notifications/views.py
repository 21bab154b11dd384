"""Notification settings pages and the Telegram webhook endpoint. Thin: parse, call a service, render. Every
lookup is owner-scoped (404)."""

from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from config.params import MAX_ID
from notifications import services
from notifications.bot import handle_update
from notifications.forms import ChannelEventsForm, ChannelForm, PreferenceForm
from notifications.models import Channel, DeliveryLog, Preference, TelegramLinkCode
from notifications.watch import DEFAULT_WARNING_PERCENT

logger = logging.getLogger(__name__)
MAX_WEBHOOK_BODY = 64 * 1024


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _channel(request: HttpRequest, channel_id: int) -> Channel:
    if channel_id > MAX_ID:
        raise Http404
    channel = Channel.objects.filter(pk=channel_id, owner=_user(request)).first()
    if channel is None:
        raise Http404
    return channel


@login_required
def channel_list(request: HttpRequest) -> HttpResponse:
    channels = list(Channel.objects.filter(owner=_user(request)).order_by("name"))
    codes = {
        c.channel_id: c
        for c in TelegramLinkCode.objects.filter(channel__in=channels, used_at__isnull=True).filter(~Q(code=""))
    }
    rows = [
        {
            "channel": c,
            "form": ChannelEventsForm(initial={"events": c.events, "is_enabled": c.is_enabled}, prefix=f"c{c.pk}"),
            "code": codes.get(c.pk),
            "last": DeliveryLog.objects.filter(channel=c).first(),
        }
        for c in channels
    ]
    pref = Preference.objects.filter(user=_user(request)).first()
    level = pref.margin_warning_percent if pref is not None else DEFAULT_WARNING_PERCENT
    context = {
        "rows": rows,
        "bot": settings.TELEGRAM_BOT_USERNAME,
        "pref_form": PreferenceForm(initial={"margin_warning_percent": level}),
    }
    return render(request, "notifications/list.html", context)


@sensitive_post_parameters("secret")
@sensitive_variables("form", "secret", "generated")
@login_required
@require_http_methods(["GET", "POST"])
def channel_create(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None, owner=_user(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        channel, generated = services.channel_create(
            owner=_user(request),
            kind=data["kind"],
            name=data["name"],
            address=data["address"],
            secret=data.get("secret") or "",
        )
        if channel.kind == Channel.Kind.TELEGRAM:
            services.link_code_create(channel=channel)
        if generated:
            return render(request, "notifications/created.html", {"channel": channel, "secret": generated})
        messages.success(request, _("Channel “%(name)s” added.") % {"name": channel.name})
        return redirect("notifications:list")
    return render(request, "notifications/form.html", {"form": form})


@login_required
@require_POST
def channel_events(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(request, channel_id)
    form = ChannelEventsForm(request.POST, prefix=f"c{channel.pk}")
    if form.is_valid():
        Channel.objects.filter(pk=channel.pk).update(
            events=list(form.cleaned_data["events"]), is_enabled=form.cleaned_data["is_enabled"]
        )
        messages.success(request, _("Channel “%(name)s” saved.") % {"name": channel.name})
    else:
        messages.error(request, _("Choose events from the list."))
    return redirect("notifications:list")


@login_required
@require_POST
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferenceForm(request.POST)
    if form.is_valid():
        Preference.objects.update_or_create(
            user=_user(request), defaults={"margin_warning_percent": form.cleaned_data["margin_warning_percent"]}
        )
        messages.success(request, _("Margin warning level saved."))
    else:
        messages.error(request, _("Enter a level between 0.5 and 50 percent."))
    return redirect("notifications:list")


@login_required
@require_POST
def channel_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(request, channel_id)
    if services.test_message_send(channel=channel) is None:
        messages.error(request, _("This channel cannot receive messages yet (disabled, or Telegram not linked)."))
    else:
        messages.success(request, _("Test message queued: see the delivery log."))
    return redirect("notifications:list")


@login_required
@require_POST
def channel_link(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(request, channel_id)
    if channel.kind != Channel.Kind.TELEGRAM:
        raise Http404
    services.link_code_create(channel=channel)
    messages.success(request, _("New link code created."))
    return redirect("notifications:list")


@login_required
@require_http_methods(["GET", "POST"])
def channel_delete(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(request, channel_id)
    if request.method == "POST":
        channel.delete()
        messages.success(request, _("Channel “%(name)s” deleted.") % {"name": channel.name})
        return redirect("notifications:list")
    return render(request, "notifications/confirm_delete.html", {"channel": channel})


@login_required
def channel_log(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _channel(request, channel_id)
    entries = DeliveryLog.objects.filter(channel=channel).select_related("notification")[:100]
    return render(request, "notifications/log.html", {"channel": channel, "entries": entries})


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """Production option: Telegram posts updates here (``setWebhook`` with ``secret_token``). Without a configured
    secret the endpoint does not exist; a wrong secret is a 404 too. Each update is handled once (its id is
    remembered for a day)."""
    expected = settings.TELEGRAM_WEBHOOK_SECRET
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Http404
    if len(request.body) > MAX_WEBHOOK_BODY:
        return JsonResponse({"ok": False}, status=413)
    try:
        update = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"ok": False}, status=400)
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return JsonResponse({"ok": False}, status=400)
    if cache.add(f"notifications:bot:update:{update['update_id']}", 1, timeout=86400):
        handle_update(update)
    return JsonResponse({"ok": True})
