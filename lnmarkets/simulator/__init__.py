"""Local LN Markets exchange simulator: REST v3 (``/v3``), Stream v1 (``/v1``) and a control API (``/_sim``).

Django-free; ``python -m lnmarkets.simulator`` or ``manage.py lnm_simulator`` run it standalone, and
``start_in_thread`` runs it inside tests or the embedded default. See README.md.
"""

from lnmarkets.simulator.client import ControlClient, ControlError, SimAccount
from lnmarkets.simulator.config import BucketSpec, SimulatorConfig
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.runner import RunningSimulator, start_in_thread
from lnmarkets.simulator.server import SimServer

__all__ = [
    "BucketSpec",
    "ControlClient",
    "ControlError",
    "Exchange",
    "RunningSimulator",
    "SimAccount",
    "SimServer",
    "SimulatorConfig",
    "start_in_thread",
]
