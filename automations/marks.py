"""``gettext_noop`` without Django settings: marks an English string for translation (``makemessages`` finds it by
this name) and returns it unchanged, so the pure engine modules that define labels import without a configured
Django (``bench/engine_evals.py``, the engine's purity test)."""


def gettext_noop(message: str) -> str:
    return message
