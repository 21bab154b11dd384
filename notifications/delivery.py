"""Deliver one notification at most once per attempt, and group floods.

Claim (one short transaction, the channel row locked so that decisions about one channel are serialised):
``pending`` → ``sending`` with ``attempts + 1`` and ``claimed_at``. The HTTP call runs outside any transaction, then
a compare-and-set on (``sending``, ``attempts``) records the result: ``sent``, back to ``pending`` with a time
(``retry_after`` or backoff), or ``failed``. A redelivered task finds ``sent`` and does nothing; one that finds
``sending`` inside the lease waits for the lease. Only a crash between the claim and the result leaves an unknown
outcome: after the lease the row is claimed again (attempt n + 1) and may be sent a second time — at most once per
attempt, ``NOTIFY_MAX_ATTEMPTS`` in all (docs/notifications.md says which channels can show a duplicate).

Flood rule: a channel gets at most ``NOTIFY_BURST`` individual messages in any 60 s; beyond that its notifications
are held, and when the window opens every held one is listed in one summary (a ``digest`` row), at most one summary
a minute. Nothing is dropped: every held row ends ``grouped`` under a summary that was sent.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from notifications import senders
from notifications.crypto import secret_decrypt
from notifications.derive import owner_language
from notifications.models import Channel, DeliveryLog, Event, Notification

logger = logging.getLogger(__name__)

WINDOW = timedelta(seconds=60)
DIGEST_EVENT = Event.DIGEST
MAX_DIGEST_ITEMS = 40
MAX_DIGEST_CHARS = 3800


@dataclass(frozen=True)
class Outcome:
    """What the task does next: nothing (``retry_in`` None) or run again in ``retry_in`` seconds. A ``held`` row
    names its channel's summary time (``digest_at``) instead: one task per channel and window sends the summary."""

    status: str
    retry_in: float | None = None
    channel_id: int | None = None
    digest_at: datetime | None = None


def _backoff(attempt: int) -> float:
    return min(60.0, 2.0 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)  # noqa: S311


def _window_opens(channel_id: int, now: datetime) -> datetime | None:
    """None when the channel may send an individual message now, else when it may."""
    recent = list(
        Notification.objects.filter(channel_id=channel_id, claimed_at__gte=now - WINDOW)
        .filter(Q(status=Notification.Status.SENT) | Q(status=Notification.Status.SENDING))
        .exclude(event__in=[Event.TEST])
        .order_by("-claimed_at")
        .values_list("claimed_at", flat=True)[: settings.NOTIFY_BURST]
    )
    if len(recent) < settings.NOTIFY_BURST or recent[-1] is None:
        return None
    return recent[-1] + WINDOW


def _next_digest_at(channel_id: int, now: datetime) -> datetime:
    last = (
        Notification.objects.filter(channel_id=channel_id, event=DIGEST_EVENT, claimed_at__isnull=False)
        .order_by("-claimed_at")
        .values_list("claimed_at", flat=True)
        .first()
    )
    opens = _window_opens(channel_id, now) or now
    return max(opens, last + WINDOW if last else now)


def _digest(channel: Channel, now: datetime) -> Notification | None:
    """Fold the channel's due held rows into one summary row, claimed for sending (inside the claim transaction)."""
    members = list(
        Notification.objects.select_for_update()
        .filter(channel=channel, status=Notification.Status.PENDING, held=True, next_attempt_at__lte=now)
        .order_by("source_at", "id")[:MAX_DIGEST_ITEMS]
    )
    # every line must fit in one Telegram message (4096 characters): the rest waits for the next summary
    budget, kept = MAX_DIGEST_CHARS, list[Notification]()
    for member in members:
        budget -= len(member.title) + 3
        if budget < 0 and kept:
            break
        kept.append(member)
    members = kept
    if not members:
        return None
    protective = sum(1 for m in members if m.protective)
    lines = [f"• {m.title}" for m in members]
    with owner_language(channel.owner_id):
        title = ngettext(
            "%(n)s notification in the last minute", "%(n)s notifications in the last minute", len(members)
        ) % {"n": len(members)}
        if protective:
            title += " " + _("(%(n)s protective)") % {"n": protective}
    digest = Notification.objects.create(
        channel=channel,
        event=DIGEST_EVENT,
        idempotency_key=f"digest:{channel.pk}:{members[0].pk}:{members[-1].pk}:{len(members)}",
        protective=protective > 0,
        title=title[:200],
        body="\n".join([title, *lines]),
        status=Notification.Status.SENDING,
        attempts=1,
        claimed_at=now,
        source_at=members[0].source_at,
    )
    Notification.objects.filter(pk__in=[m.pk for m in members]).update(
        status=Notification.Status.GROUPED, digest=digest, sent_at=None
    )
    return digest


def _claim(notification_id: int, now: datetime) -> tuple[Notification | None, Outcome]:
    with transaction.atomic():
        row = Notification.objects.filter(pk=notification_id).only("channel_id").first()
        if row is None:
            return None, Outcome("missing")
        channel = Channel.objects.select_for_update().get(pk=row.channel_id)
        row = Notification.objects.select_for_update().get(pk=notification_id)
        if row.status in (Notification.Status.SENT, Notification.Status.GROUPED, Notification.Status.FAILED):
            return None, Outcome(row.status)
        lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
        if row.status == Notification.Status.SENDING:
            assert row.claimed_at is not None
            if row.claimed_at + lease > now:
                return None, Outcome("in_flight", (row.claimed_at + lease - now).total_seconds() + 1)
            # The claimant died mid-send: the outcome is unknown; this is a new attempt (docs/notifications.md).
            logger.warning("notification %s: attempt %s outcome unknown, claiming again", row.pk, row.attempts)
        elif row.next_attempt_at > now:
            return None, Outcome("not_due", (row.next_attempt_at - now).total_seconds())
        refusal = "" if channel.is_ready else "channel disabled or not linked"
        if row.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
            refusal = "too many attempts"
        if refusal:
            Notification.objects.filter(pk=row.pk).update(status=Notification.Status.FAILED, error=refusal)
            DeliveryLog.objects.create(
                channel=channel, notification=row, attempt=row.attempts, status="failed", detail=refusal
            )
            return None, Outcome("failed")
        if row.event not in (Event.TEST, DIGEST_EVENT) and row.status == Notification.Status.PENDING:
            if row.held:
                digest = _digest(channel, now)
                if digest is None:  # folded into another summary meanwhile
                    return None, Outcome("grouped")
                return digest, Outcome("claimed")
            already_held = Notification.objects.filter(
                channel=channel, status=Notification.Status.PENDING, held=True
            ).exists()
            opens = _window_opens(channel.pk, now)
            if already_held or opens is not None:
                due = _next_digest_at(channel.pk, now)
                Notification.objects.filter(pk=row.pk).update(held=True, next_attempt_at=due)
                return None, Outcome("held", channel_id=channel.pk, digest_at=max(due, now + timedelta(seconds=0.5)))
        Notification.objects.filter(pk=row.pk).update(
            status=Notification.Status.SENDING, attempts=F("attempts") + 1, claimed_at=now
        )
        row.refresh_from_db()
        return row, Outcome("claimed")


def _send(row: Notification) -> None:
    channel = row.channel
    if channel.kind == Channel.Kind.TELEGRAM:
        senders.send_telegram(channel.address, row.body)
    elif channel.kind == Channel.Kind.EMAIL:
        senders.send_email(channel.address, f"[Axisor] {row.title}", row.body, idempotency_key=row.idempotency_key)
    elif channel.kind == Channel.Kind.WEBHOOK:
        payload = {
            "event": row.event,
            "title": row.title,
            "text": row.body,
            "idempotency_key": row.idempotency_key,
            "created_at": row.source_at.isoformat(),
        }
        url = secret_decrypt(channel.target_encrypted) if channel.target_encrypted else channel.address
        senders.send_webhook(url, channel.secret_encrypted, payload, idempotency_key=row.idempotency_key)
    else:
        raise senders.PermanentError(f"unknown channel kind {channel.kind!r}")


def _finish(row: Notification, **fields: object) -> bool:
    """Compare-and-set on the claim: only the attempt that claimed the row records its result."""
    return bool(
        Notification.objects.filter(pk=row.pk, status=Notification.Status.SENDING, attempts=row.attempts).update(
            **fields
        )
    )


def notification_deliver(*, notification_id: int) -> Outcome:
    """Deliver (or hold, or fold) one notification; returns what the task does next."""
    now = timezone.now()
    row, outcome = _claim(notification_id, now)
    if row is None:
        return outcome
    started = time.monotonic()
    try:
        _send(row)
    except senders.RetryAfterError as exc:
        status, detail, retry_in = Notification.Status.PENDING, str(exc), exc.seconds
    except senders.TemporaryError as exc:
        if row.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
            status, detail, retry_in = Notification.Status.FAILED, str(exc), None
        else:
            status, detail, retry_in = Notification.Status.PENDING, str(exc), _backoff(row.attempts)
    except senders.DeliveryError as exc:
        status, detail, retry_in = Notification.Status.FAILED, str(exc), None
    else:
        status, detail, retry_in = Notification.Status.SENT, "", None
    duration_ms = int((time.monotonic() - started) * 1000)
    done = timezone.now()
    fields: dict[str, object] = {"status": status, "error": detail[:300]}
    if status == Notification.Status.SENT:
        fields["sent_at"] = done
    if retry_in is not None:
        fields["next_attempt_at"] = done + timedelta(seconds=retry_in)
    recorded = _finish(row, **fields)
    DeliveryLog.objects.create(
        channel_id=row.channel_id,
        notification=row,
        attempt=row.attempts,
        status=status if recorded else "superseded",
        detail=detail[:300],
        duration_ms=duration_ms,
    )
    if status == Notification.Status.FAILED:
        logger.warning("notification %s to channel %s failed: %s", row.pk, row.channel_id, detail)
    return Outcome(status, retry_in if recorded else None)


def notifications_due(*, now: datetime) -> list[int]:
    """Rows a delivery should be working on but maybe is not (a lost enqueue, a crashed claimant): for the sweep."""
    lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    grace = timedelta(seconds=settings.NOTIFY_SWEEP_SECONDS)
    return list(
        Notification.objects.filter(
            Q(status=Notification.Status.PENDING, next_attempt_at__lt=now - grace)
            | Q(status=Notification.Status.SENDING, claimed_at__lt=now - lease)
        ).values_list("pk", flat=True)[:1000]
    )
