"""Session hooks: logging out or changing the password closes the user's open dashboard sockets.

Channels resolves ``scope["user"]`` once per connection (docs/reliability.md §3), so an HTTP logout would otherwise
leave sockets streaming. These receivers publish ``session.ended`` to ``user.<id>`` after the commit; connected in
``RealtimeConfig.ready``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest

from axisor_bus.publish import publish_session_ended_on_commit

_CHANGED = "_realtime_password_changed"


def on_logged_out(sender: Any, request: HttpRequest | None, user: AbstractBaseUser | None, **kwargs: Any) -> None:  # noqa: ANN401
    """Close the sockets of a user who logged out."""
    if user is not None and user.pk is not None:
        publish_session_ended_on_commit(int(user.pk), "logout")


def on_user_pre_save(sender: Any, instance: AbstractBaseUser, update_fields: Any = None, **kwargs: Any) -> None:  # noqa: ANN401
    """Note whether the stored password hash is about to change (one query, only when the password may be saved)."""
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = type(instance)._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, _CHANGED, stored is not None and stored != instance.password)


def on_user_post_save(sender: Any, instance: AbstractBaseUser, created: bool, **kwargs: Any) -> None:  # noqa: ANN401
    """Close the sockets of a user whose password changed, after the commit."""
    if getattr(instance, _CHANGED, False):
        setattr(instance, _CHANGED, False)
        publish_session_ended_on_commit(int(instance.pk), "password_changed")


def connect() -> None:
    """Connect the receivers (idempotent through ``dispatch_uid``)."""
    user_model = get_user_model()
    user_logged_out.connect(on_logged_out, dispatch_uid="realtime.logout")
    pre_save.connect(on_user_pre_save, sender=user_model, dispatch_uid="realtime.user_pre_save")
    post_save.connect(on_user_post_save, sender=user_model, dispatch_uid="realtime.user_post_save")
