"""Put messages held by dead workers back at the head of their queue (Redis broker only).

kombu keeps a delivered message in `unacked` until it is acknowledged and gives it back only after the
visibility timeout (hours, since chapters run that long). Workers lease what they hold (scaler.leases); a
pass of the reaper restores every message of our queues whose lease lapsed, through kombu's own
`QoS.restore_by_tag`: one WATCH transaction on `unacked`, so a message restored concurrently by kombu's
visibility sweep, or acknowledged by a late worker, is never restored twice.

RabbitMQ needs none of this: it requeues a dead consumer's messages itself when the connection drops.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from kombu import Connection

from scaler.leases import Leases, UnackedKeys, key_prefix, parse_unacked, stranded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReapReport:
    held: int  # messages of our queues in `unacked`
    restored: list[dict[str, Any]] = field(default_factory=list)  # {tag, queue, task_id, held_s}
    skipped: str | None = None  # why this pass restored nothing on purpose

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Reaper:
    """One pass: read `unacked`, leases and the delivery times; restore what no live worker holds."""

    def __init__(self, client: redis.Redis, connect: Callable[[], Connection], queues: Collection[str],
                 transport_options: Mapping[str, Any] | None = None, lease_s: float = 60.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.connect = connect  # a kombu connection to the broker: restores go through kombu's QoS
        self.queues = frozenset(queues)
        self.keys = UnackedKeys.from_options(transport_options)
        self.leases = Leases(client, key_prefix(transport_options), lease_s)
        self.lease_s = lease_s
        self.clock = clock

    def run(self) -> ReapReport:
        uptime = int(self.client.info("server").get("uptime_in_seconds", 0))
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.messages)
        pipe.zrange(self.keys.index, 0, -1, withscores=True)
        messages, index = pipe.execute()
        held = [h for h in parse_unacked(messages, dict(index)) if h.queue in self.queues]
        if uptime < self.lease_s:
            # Leases may have lapsed while Redis was down; live workers renew them within a third of a lease.
            return ReapReport(len(held), skipped=f"redis restarted {uptime} s ago: waiting one lease for "
                                                 "workers to renew theirs")
        leased = self.leases.held([h.tag for h in held])
        now = self.clock()
        lost = stranded(held, leased, now, self.lease_s, self.queues)
        restored = []
        if lost:
            with self.connect() as conn:
                qos = conn.default_channel.qos
                for entry in lost:
                    # Default (not leftmost): kombu pops from the right, so this is the next message taken.
                    qos.restore_by_tag(entry.tag)
                    restored.append({"tag": entry.tag, "queue": entry.queue, "task_id": entry.task_id,
                                     "held_s": round(now - entry.delivered_at, 1)})
        report = ReapReport(len(held), restored)
        if restored:
            log.warning("reaper %s", json.dumps(report.to_json(), sort_keys=True))
        return report
