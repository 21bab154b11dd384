"""The history app: closed and canceled trades reconciled from the exchange, and the performance built on them."""

from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "history"
