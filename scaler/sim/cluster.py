"""Celery and the broker as the execution core reads them in the simulator: our registered pods answer, with
their model reports; the queue is the simulation's."""

from __future__ import annotations

from collections.abc import Callable

from scaler.health import WorkerHealth
from scaler.observe import QueueDepth
from scaler.sim.cloud import DEPLOYMENT, EPOCH, Pod, SimCloud
from scaler.workers import CeleryWorker


class SimCluster:
    """Celery and the broker as the core reads them: our registered pods answer, the queue is the simulation's."""

    def __init__(self, cloud: SimCloud) -> None:
        self.cloud = cloud
        self.waiting = 0
        self.in_flight = 0
        self.queued_chars = 0
        self.oldest_queued_at: float | None = None
        self.on_drain: Callable[[Pod], None] | None = None

    def depth(self, with_chars: bool) -> QueueDepth:
        """Always with the characters: counting them costs nothing here, and each peer picks its own policy."""
        return QueueDepth(waiting=self.waiting, in_flight=self.in_flight, queued_chars=self.queued_chars,
                          oldest_queued_at=self.oldest_queued_at)

    def workers(self) -> dict[str, CeleryWorker]:
        t = self.cloud.clock.t
        return {p.nodename: CeleryWorker(p.nodename, consuming=not p.draining and p.broken is None,
                                         active=int(p.chapter is not None), reserved=0)
                for p in self.cloud.live_ours() if p.registered(t)}

    def health(self) -> dict[str, WorkerHealth]:
        t = self.cloud.clock.t
        return {p.nodename: WorkerHealth(ok=p.broken is None, error=p.broken, at=EPOCH + (p.ready_at or 0.0))
                for p in self.cloud.live_ours() if p.registered(t)}

    def drain(self, nodename: str) -> bool:
        pod = next((p for p in self.cloud.pods.values() if p.nodename == nodename), None)
        if pod is None:
            return False
        if pod.deployment != DEPLOYMENT:
            self.cloud.stats.foreign_touched += 1
        pod.draining = True  # cancel_consumer: the chapter in hand finishes, nothing new is taken
        if self.on_drain is not None:
            self.on_drain(pod)
        return True

    def forget_health(self, nodenames: list[str]) -> None:
        return None
