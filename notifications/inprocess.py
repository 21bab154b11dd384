"""The embedded default's Telegram bot: long polling in a daemon thread, when a bot token is configured."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

from notifications import senders
from notifications.bot import poll_once

logger = logging.getLogger(__name__)


def start_bot_thread(*, poll_timeout: int = 25) -> Callable[[], None]:
    """Poll ``getUpdates`` until stopped (no-op without a token); returns the stop function."""
    stopping = threading.Event()

    def run() -> None:
        while not stopping.is_set():
            try:
                if not senders.bot_token():
                    stopping.wait(60)
                    continue
                poll_once(timeout=poll_timeout)
            except senders.DeliveryError as exc:
                logger.warning("telegram bot: getUpdates failed: %s", exc)
                stopping.wait(5)
            finally:
                close_old_connections()

    thread = threading.Thread(target=run, name="telegram-bot", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(2)  # a daemon: a poll in progress ends with the process

    return stop
