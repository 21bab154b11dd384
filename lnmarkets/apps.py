from django.apps import AppConfig


class LnmarketsConfig(AppConfig):
    name = "lnmarkets"
    verbose_name = "LN Markets gateway"
