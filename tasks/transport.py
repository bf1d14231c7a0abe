"""A screen on what a worker's Redis channels pop: a raw item no kombu message can be built from is kept as
a dead letter instead of stopping the worker.

kombu's Redis channel pops an item (BRPOP) and decodes it into a message in the same step, before any hook of
Celery's; an item that is not kombu's JSON envelope raises there, in the worker's event loop, and the worker
exits. Anything can be pushed onto a Redis list (a careless producer, a hand-run LPUSH), so the channel here
reads the popped item first (`tasks.messages.unreadable_item`) and, when it is not a message, keeps it
(tasks.deadletter), logs it once and reads on. The item has left the list by then: it is in no queue, so no
other worker sees it. Everything kombu can read goes on as before to the guarded consumer (tasks.consumer),
which judges the message itself.

The guarded consumer (tasks.consumer) applies it to its connection on Redis and Sentinel brokers.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from tasks.messages import unreadable_item

log = logging.getLogger(__name__)


def keep_unreadable(queue: str, item: bytes, why: str) -> None:
    """The dead-letter exit for a raw item: stored if storage answers, logged once either way."""
    from tasks.deadletter import DeadLetter, DeadLetterStore
    from tasks.runtime import get_storage

    letter = DeadLetter.from_raw(item, queue, why, worker=socket.gethostname())
    try:
        where = DeadLetterStore(get_storage()).put(letter)
    except Exception as exc:  # noqa: BLE001 - the item is off the list already: say what it was
        log.error("dead letter %s: raw item on queue %s: %s; cannot keep it (%s), it was %r", letter.id, queue, why,
                  exc, item[:200])
        return
    log.error("dead letter %s: raw item on queue %s: %s (kept at %s; `audiobook deadletter`)", letter.id, queue, why,
              where)


class ScreenedBrpop:
    """Mixed into kombu's Redis channels: the BRPOP reply is screened before kombu decodes it."""

    sep: str

    def _brpop_read(self, **options: Any) -> Any:  # noqa: ANN401 - kombu's signature
        client = self.client  # type: ignore[attr-defined]
        read = client.parse_response

        def screened(connection: Any, command: str, **kwargs: Any) -> Any:  # noqa: ANN401
            reply = read(connection, command, **kwargs)
            if reply and command == "BRPOP":
                dest, item = reply
                why = unreadable_item(item if isinstance(item, bytes) else str(item).encode())
                if why is not None:
                    keep_unreadable((dest.decode() if isinstance(dest, bytes) else dest).rsplit(self.sep, 1)[0],
                                    item, why)
                    return None  # kombu reads this as an empty poll and polls again
            return reply

        client.parse_response = screened
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        finally:
            del client.parse_response


def screen_redis_channels(connection: Any) -> Any:  # noqa: ANN401 - a kombu Connection
    """Make `connection`'s Redis channels screen what they pop; any other transport is left as it is.

    Called on the worker's consuming connection before it connects (its first channel is made then). The
    transport stays kombu's own, chosen by the URL's scheme, so the URL, Flower's broker view and everything
    else that reads the connection see a plain redis:// or sentinel:// broker."""
    transport = connection.transport
    if getattr(transport, "driver_type", None) == "redis" and not issubclass(transport.Channel, ScreenedBrpop):
        base = transport.Channel
        transport.Channel = type(f"Screened{base.__name__}", (ScreenedBrpop, base), {})
    return connection
