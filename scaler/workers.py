"""Which Celery workers answer, whether they consume the GPU queue, and what they hold (Celery inspect).

One broadcast of `active_queues` finds every answering worker; `active` and `reserved` then go only to
those, returning as soon as all have answered. A worker that answers the first but not the second is
counted busy: a missing reply does not mean idle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery

from scaler.errors import ObservationError


@dataclass(frozen=True)
class CeleryWorker:
    nodename: str
    consuming: bool  # consumes the GPU queue (False once cancel_consumer took effect)
    active: int  # GPU-queue tasks running
    reserved: int  # GPU-queue tasks prefetched
    answered: bool = True  # answered active/reserved too

    @property
    def busy(self) -> bool:
        return self.active + self.reserved > 0 or not self.answered


def _routed_to(task: dict[str, Any], queue: str) -> bool:
    info = task.get("delivery_info") or {}
    return queue in (info.get("routing_key"), info.get("exchange"))


def inspect_workers(app: Celery, queue: str, timeout: float = 1.0) -> dict[str, CeleryWorker]:
    """Every answering worker, by nodename. Raises ObservationError when the broker cannot be reached."""
    try:
        queues = app.control.inspect(timeout=timeout).active_queues() or {}
        nodes = sorted(queues)
        if not nodes:
            return {}
        targeted = app.control.inspect(destination=nodes, timeout=timeout, limit=len(nodes))
        active = targeted.active() or {}
        reserved = targeted.reserved() or {}
    except Exception as exc:  # kombu/redis/amqp errors of every kind: the read failed
        raise ObservationError(f"celery inspect: {type(exc).__name__}: {exc}") from None
    found = {}
    for node in nodes:
        consuming = any(q.get("name") == queue for q in queues.get(node) or [])
        answered = node in active and node in reserved
        found[node] = CeleryWorker(
            nodename=node, consuming=consuming,
            active=sum(1 for t in active.get(node) or [] if _routed_to(t, queue)),
            reserved=sum(1 for t in reserved.get(node) or [] if _routed_to(t, queue)),
            answered=answered)
    return found


def in_flight_from(workers: dict[str, CeleryWorker]) -> int:
    """GPU-queue tasks held by workers (for brokers without an `unacked` view, i.e. AMQP)."""
    return sum(w.active + w.reserved for w in workers.values())
