"""The world the execution core acts on: a provider, a Celery cluster, a state store, a lock and a clock.

The live tick builds it from RunPod (or local processes), Celery, Redis and `time.time`; the simulator from
simulated pods, a simulated queue, a dict and a simulated clock. The core (`scaler.core`) never reaches past
these fields, so both run the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scaler.health import WorkerHealth
from scaler.observe import QueueDepth
from scaler.providers.base import Provider
from scaler.state import Store
from scaler.workers import CeleryWorker


class Cluster(Protocol):
    """What Celery and the broker say, and the one thing the core asks of Celery (a drain)."""

    def depth(self, with_chars: bool) -> QueueDepth:
        """Waiting and in-flight chapters; raises ObservationError when the broker cannot be read."""

    def workers(self) -> dict[str, CeleryWorker]:
        """Every answering worker by nodename; raises ObservationError when Celery cannot be asked."""

    def health(self) -> dict[str, WorkerHealth]:
        """The workers' model reports by nodename; raises ObservationError when they cannot be read."""

    def drain(self, nodename: str) -> bool:
        """Ask one worker to stop taking chapters; True if it acknowledged."""

    def forget_health(self, nodenames: list[str]) -> None:
        """Drop the reports of workers that are gone."""


def _no_lock() -> None:
    return None


@dataclass
class World:
    provider: Provider
    cluster: Cluster
    store: Store
    clock: Callable[[], float]
    new_name: Callable[[], str]  # a fresh worker name (the provider's prefix and a unique tail)
    keep: Callable[[], None] = _no_lock  # renew the single-flight lock before a write; raises LockLost
