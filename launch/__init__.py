"""The top layer: the process launchers (``run_embedded``, ``run_automations``) and what the feed process starts.

Nothing imports this package; it may import every app (docs/exchange-events.md, "Imports run one way").
"""
