"""Broker depth of the GPU queue: waiting, in-flight, and (Redis) the characters waiting.

Redis: waiting = sum of LLEN over the queue key and kombu's priority keys (`q`, `q<sep>3`, `<sep>6`,
`<sep>9`, from the transport's `sep` and `priority_steps`, under `global_keyprefix`); in-flight = entries
of the `unacked` hash routed to the queue that a live worker holds (a lease, or just delivered); a message
held by a dead worker counts as waiting (the reaper puts it back, and it needs a worker); the oldest waiting
message's `queued_at` header (stamped at publish by `stamp_queued_at`) gives the age of the queue. AMQP: a
passive queue_declare's message_count (NOT_FOUND is an empty queue); in-flight comes from Celery inspect
instead. A failed read raises ObservationError: it is never taken as zero.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from kombu import Connection
from kombu.exceptions import ChannelError

from scaler.errors import ObservationError
from scaler.leases import Leases, UnackedKeys, key_prefix, parse_unacked, stranded
from scaler.redis_client import is_redis_url, redis_client
from settings import DEFAULT_LEASE_S

DEFAULT_SEP = "\x06\x16"
DEFAULT_PRIORITY_STEPS = (0, 3, 6, 9)
#: Messages decoded at most per read to count characters; the rest is extrapolated from their mean.
DEFAULT_SAMPLE = 200
#: Message header holding the epoch seconds at which a task was published (see `stamp_queued_at`).
QUEUED_AT_HEADER = "queued_at"


@dataclass(frozen=True)
class QueueDepth:
    waiting: int  # includes `stranded`
    in_flight: int | None  # None: this broker cannot tell (AMQP); take it from Celery inspect
    queued_chars: int | None = None  # None: not read or not readable
    oldest_queued_at: float | None = None  # publish time of the oldest waiting message; None: empty or unknown
    stranded: int = 0  # held by a dead worker (lease lapsed), about to be restored: counted as waiting


def stamp_queued_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """`before_task_publish` receiver: note when each task was published, so the queue's age can be read."""
    if headers is not None and QUEUED_AT_HEADER not in headers:
        headers[QUEUED_AT_HEADER] = time.time()


def message_queued_at(raw: bytes | str) -> float | None:
    """The `queued_at` header of one kombu Redis message, None if it has none."""
    try:
        value = (json.loads(raw).get("headers") or {}).get(QUEUED_AT_HEADER)
        return float(value) if value is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


class DepthReader(Protocol):
    def read(self, with_chars: bool = False) -> QueueDepth: ...


def queue_keys(queue: str, transport_options: Mapping[str, Any]) -> list[str]:
    """Redis keys that hold `queue`'s waiting messages, as kombu names them."""
    prefix = transport_options.get("global_keyprefix", "") or ""
    sep = transport_options.get("sep", DEFAULT_SEP)
    steps = transport_options.get("priority_steps", DEFAULT_PRIORITY_STEPS)
    return [f"{prefix}{queue}{sep}{step}" if step else f"{prefix}{queue}" for step in steps]


def message_text_length(raw: bytes | str) -> int | None:
    """Length of the `text` kwarg of one kombu Redis message (base64 JSON body), None if it has none."""
    try:
        message = json.loads(raw)
        body = message["body"]
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
    except (ValueError, KeyError, TypeError):
        return None
    kwargs = payload[1] if isinstance(payload, list) and len(payload) > 1 else (payload or {}).get("kwargs")
    text = kwargs.get("text") if isinstance(kwargs, dict) else None
    return len(text) if isinstance(text, str) else None


class RedisDepth:
    """Depth of one queue on a Redis broker, read with redis-py (kombu has no API for `unacked`)."""

    def __init__(self, client: redis.Redis, queue: str, transport_options: Mapping[str, Any] | None = None,
                 sample: int = DEFAULT_SAMPLE, lease_s: float = DEFAULT_LEASE_S,
                 clock: Callable[[], float] = time.time) -> None:
        options = dict(transport_options or {})
        self.client = client
        self.queue = queue
        self.keys = queue_keys(queue, options)
        self.unacked = UnackedKeys.from_options(options)
        self.leases = Leases(client, key_prefix(options), lease_s)
        self.lease_s = lease_s
        self.sample = sample
        self.clock = clock

    @classmethod
    def from_url(cls, url: str, queue: str, transport_options: Mapping[str, Any] | None = None,
                 lease_s: float = DEFAULT_LEASE_S) -> RedisDepth:
        client = redis_client(url, transport_options, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, queue, transport_options, lease_s=lease_s)

    def read(self, with_chars: bool = False) -> QueueDepth:
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self.keys:
                pipe.llen(key)
            for key in self.keys:
                pipe.lindex(key, -1)  # kombu pushes on the left and takes from the right: the oldest
            pipe.hgetall(self.unacked.messages)
            pipe.zrange(self.unacked.index, 0, -1, withscores=True)
            replies = pipe.execute(raise_on_error=True)
            lengths, oldest = replies[:len(self.keys)], replies[len(self.keys):-2]
            messages, index = replies[-2], replies[-1]
            held = [h for h in parse_unacked(messages, dict(index)) if h.queue in (self.queue, None)]
            leased = self.leases.held([h.tag for h in held])
            lost = len(stranded(held, leased, self.clock(), self.lease_s, {self.queue}))
            waiting = sum(int(n) for n in lengths)
            chars = self._queued_chars(lengths, waiting) if with_chars else None
        except redis.RedisError as exc:
            raise ObservationError(f"redis depth of {self.queue}: {exc}") from None
        stamps = [t for t in (message_queued_at(raw) for raw in oldest if raw is not None) if t is not None]
        # An unreadable entry (no queue) counts as in flight rather than shrink the pool under it.
        return QueueDepth(waiting=waiting + lost, in_flight=len(held) - lost, queued_chars=chars,
                          oldest_queued_at=min(stamps) if stamps else None, stranded=lost)

    def _queued_chars(self, lengths: list[int], waiting: int) -> int:
        if waiting == 0:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for key, length in zip(self.keys, lengths, strict=True):
            share = min(length, math.ceil(self.sample * length / waiting))
            if share:
                pipe.lrange(key, -share, -1)  # the oldest, next to be taken
        sampled = [n for batch in pipe.execute(raise_on_error=True) for n in map(message_text_length, batch)]
        counted = [n for n in sampled if n is not None]
        if not counted:
            return 0
        return round(sum(counted) / len(counted) * waiting)


class AmqpDepth:
    """Depth of one queue on an AMQP broker: a passive declare's message_count (ready messages only)."""

    def __init__(self, url: str, queue: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.queue = queue
        self.connect_timeout = connect_timeout

    def read(self, with_chars: bool = False) -> QueueDepth:
        try:
            with Connection(self.url, connect_timeout=self.connect_timeout) as conn:
                channel = conn.channel()
                try:
                    waiting = channel.queue_declare(queue=self.queue, passive=True).message_count
                except ChannelError as exc:
                    if "NOT_FOUND" not in str(exc) and getattr(exc, "code", None) != 404:
                        raise
                    waiting = 0  # not declared yet: nothing was ever sent
        except Exception as exc:  # kombu/amqp raise many types; any of them is a failed read
            raise ObservationError(f"amqp depth of {self.queue}: {exc}") from None
        return QueueDepth(waiting=int(waiting), in_flight=None, queued_chars=None)


def depth_reader(broker_url: str, queue: str, transport_options: Mapping[str, Any] | None = None,
                 lease_s: float = DEFAULT_LEASE_S) -> DepthReader:
    """The depth reader for this broker URL (`lease_s`: AUDIOBOOK_LEASE_S, for the Redis in-flight count)."""
    if is_redis_url(broker_url):
        return RedisDepth.from_url(broker_url, queue, transport_options, lease_s)
    return AmqpDepth(broker_url, queue)
