"""Run the Telegram bot by long polling (``getUpdates``), or store its token encrypted (``--set-token`` reads it from
standard input, so it never appears in the shell history or the process list)."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from notifications import senders
from notifications.bot import poll_once
from notifications.crypto import secret_encrypt
from notifications.models import BotState


class Command(BaseCommand):
    help = "Run the Telegram bot (long polling), or --set-token to store the bot token encrypted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--set-token", action="store_true", help="Read the bot token from stdin and store it.")
        parser.add_argument("--once", action="store_true", help="One polling round, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ANN401
        if options["set_token"]:
            token = sys.stdin.readline().strip()
            if not token:
                self.stderr.write("No token on standard input.")
                return
            BotState.objects.update_or_create(pk=1, defaults={"token_encrypted": secret_encrypt(token)})
            self.stdout.write("Bot token stored (encrypted).")
            return
        while True:
            try:
                poll_once(timeout=0 if options["once"] else 25)
            except senders.DeliveryError as exc:
                self.stderr.write(f"getUpdates failed: {exc}")
                time.sleep(5)
            if options["once"]:
                return
