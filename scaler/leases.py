"""Delivery leases on a Redis broker: proof that a live worker still holds a message kombu keeps in `unacked`.

A worker's main process renews `<global_keyprefix>audiobook:lease:<delivery tag>` (a key with a TTL) for every
message it holds; a worker that dies (SIGKILL, OOM, a vanished pod) stops renewing, and its leases lapse
within one TTL. Kombu alone would leave such a message invisible for the whole visibility timeout (hours).
The reaper (scaler.reaper) and the depth reader (scaler.observe) read leases; only workers write them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

LEASE_KEY = "audiobook:lease:"


def key_prefix(transport_options: Mapping[str, Any] | None) -> str:
    """The broker's `global_keyprefix` (kombu puts it before every key it writes)."""
    return (transport_options or {}).get("global_keyprefix", "") or ""


@dataclass(frozen=True)
class UnackedKeys:
    """kombu's Redis keys for delivered, unacknowledged messages (names from the transport options)."""

    messages: str  # hash: delivery tag -> JSON [message, exchange, routing key]
    index: str  # sorted set: delivery tag -> delivery time (the delivering worker's clock)

    @classmethod
    def from_options(cls, transport_options: Mapping[str, Any] | None) -> UnackedKeys:
        options = transport_options or {}
        prefix = key_prefix(options)
        return cls(prefix + options.get("unacked_key", "unacked"),
                   prefix + options.get("unacked_index_key", "unacked_index"))


class Leases:
    """Lease keys of delivery tags under one key prefix."""

    def __init__(self, client: redis.Redis, prefix: str = "", ttl_s: float = 60.0) -> None:
        self.client = client
        self.prefix = prefix + LEASE_KEY
        self.ttl_ms = max(1, int(ttl_s * 1000))

    def key(self, tag: str) -> str:
        return self.prefix + tag

    def renew(self, tags: Iterable[str], holder: str) -> int:
        """(Re)start the TTL of each tag's lease; returns how many were written."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for tag in tags:
            pipe.set(self.key(tag), holder, px=self.ttl_ms)
            count += 1
        if count:
            pipe.execute()
        return count

    def held(self, tags: list[str]) -> set[str]:
        """The tags among `tags` whose lease is alive."""
        if not tags:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for tag in tags:
            pipe.exists(self.key(tag))
        return {tag for tag, alive in zip(tags, pipe.execute(), strict=True) if alive}


@dataclass(frozen=True)
class Held:
    """One entry of kombu's `unacked`: a message some worker took and has not acknowledged."""

    tag: str
    queue: str | None  # the routing key it was delivered with (our queues route by their own name)
    delivered_at: float
    task_id: str | None = None


def parse_unacked(messages: Mapping[bytes, bytes], index: Mapping[bytes, float]) -> list[Held]:
    """The `unacked` hash and `unacked_index` scores as Held entries; an unreadable entry has no queue."""
    held = []
    for raw_tag, raw in messages.items():
        tag = raw_tag.decode() if isinstance(raw_tag, bytes) else str(raw_tag)
        queue = task_id = None
        try:
            message, exchange, routing_key = json.loads(raw)
            queue = routing_key or exchange
            task_id = (message.get("headers") or {}).get("id")
        except (ValueError, TypeError, AttributeError):
            pass
        held.append(Held(tag, queue, float(index.get(raw_tag, 0.0)), task_id if isinstance(task_id, str) else None))
    return held


def stranded(held: Iterable[Held], leased: Collection[str], now: float, grace_s: float,
             queues: Collection[str]) -> list[Held]:
    """Messages of `queues` that no live worker holds: no lease, and delivered longer than `grace_s` ago (a
    worker leases a message as it receives it; the grace covers that moment and modest clock skew)."""
    return [h for h in held if h.queue in queues and h.tag not in leased and now - h.delivered_at > grace_s]
