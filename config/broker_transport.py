"""The Redis broker transport, with one fix: a worker survives losing Redis while it holds unacknowledged messages.

Celery 5.7's consumer, on a broker connection error, collects the connection and then closes it. When a socket
timeout cuts the collect short, the transport's client is already dropped but the channel is still open; closing
it restores the unacknowledged messages to their queues, which needs the client's host and port, and kombu 5.7
raises ``AttributeError`` there. That error escapes Celery's "ignore connection errors" guard and stops the worker
("Unrecoverable error"): after a Redis restart no task runs until someone restarts the worker (seen in tests/faults
T07). Here the restore is skipped when the client is gone: the
messages stay in Redis's unacked set, where kombu's ``restore_visible`` puts them back after the visibility
timeout, and the intent sweep re-queues any intent whose lease ran out sooner (docs/exactly-once.md). The worker
then reconnects as it does after any other connection error.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis

logger = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked(self, client: Any = None) -> Any:  # noqa: ANN401 - kombu's signature
        if client is None and self.channel.connection.client is None:
            logger.warning(
                "broker connection gone: %d unacknowledged message(s) left for the visibility-timeout restore",
                len(self._delivered or ()),
            )
            return None
        return super().restore_unacked(client)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
