"""A user's preferences: language, time zone and display currency; applied to each request by the middleware."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import trans_real

from accounts.models import User


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone this system knows, sorted (the settings page's choices)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def language_codes() -> tuple[str, ...]:
    return tuple(code for code, _ in settings.LANGUAGES)


def user_language(user: User, accept_language: str = "") -> str:
    """The language to speak to ``user`` in: the chosen one, else the browser's (an ``Accept-Language`` header, when
    there is one: web sockets), else the site's default (messages sent by Telegram, e-mail or webhook)."""
    if user.language in language_codes():
        return user.language
    for code, _quality in trans_real.parse_accept_lang_header(accept_language):
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return str(settings.LANGUAGE_CODE)


def preferences_update(*, user: User, language: str, time_zone: str, display_currency: str) -> User:
    """Store validated preferences (the form checks each value against the known ones)."""
    user.language = language
    user.time_zone = time_zone
    user.display_currency = display_currency
    user.save(update_fields=["language", "time_zone", "display_currency"])
    return user


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name or name not in time_zone_names():
        return None
    return zoneinfo.ZoneInfo(name)


class UserPreferencesMiddleware:
    """After authentication: a signed-in user's chosen language wins over the browser's (LocaleMiddleware already
    chose from the cookie and Accept-Language), and their time zone formats every date."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if isinstance(user, User) and user.is_authenticated:
            if user.language in language_codes():
                translation.activate(user.language)
                request.LANGUAGE_CODE = user.language
            zone = _zone(user.time_zone)
            if zone is not None:
                timezone.activate(zone)
            else:
                timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
