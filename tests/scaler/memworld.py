"""An in-memory world for the execution core: the simulator's pods and Celery view, a dict store and a clock
the test moves. No Redis, no threads, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from scaler.core import CoreOptions, run_tick
from scaler.policy import GpuOffer, PolicyConfig, decide
from scaler.records import TickRecord
from scaler.sim.cloud import DEPLOYMENT, FOREIGN_DEPLOYMENT, Pod, SimClock, SimCloud
from scaler.sim.cluster import SimCluster
from scaler.sim.faults import FaultModel
from scaler.state import MemoryStore
from scaler.world import World

A4000 = GpuOffer("NVIDIA RTX A4000", 0.34)
RTX3090 = GpuOffer("NVIDIA GeForce RTX 3090", 0.43)
BOOT_S = 100.0


@dataclass
class MemWorld:
    """One scaler on simulated pods. `tick()` runs the real core with the real policy."""

    config: PolicyConfig = field(default_factory=PolicyConfig)
    offers: tuple[GpuOffer, ...] = (A4000, RTX3090)
    capacity_backoff_s: float = 300.0
    crash_loop_workers: int = 3
    crash_loop_cooloff_s: float = 1800.0

    def __post_init__(self) -> None:
        self.clock = SimClock()
        self.cloud = SimCloud(self.clock, self.offers, max_workers=self.config.max_workers,
                              max_usd_per_hour=self.config.max_usd_per_hour, boot_s=BOOT_S, boot_jitter=0.0)
        self.cluster = SimCluster(self.cloud)
        self.store = MemoryStore()
        self.names = 0
        self.world = World(provider=self.cloud, cluster=self.cluster, store=self.store, clock=self.clock,
                           new_name=self._name)

    def _name(self) -> str:
        self.names += 1
        return f"audiobook-gpu-{self.names:04d}"

    @property
    def options(self) -> CoreOptions:
        return CoreOptions(config=self.config, deployment=DEPLOYMENT, capacity_backoff_s=self.capacity_backoff_s,
                           crash_loop_workers=self.crash_loop_workers, crash_loop_cooloff_s=self.crash_loop_cooloff_s)

    def tick(self, dry_run: bool = False, faults: FaultModel | None = None) -> TickRecord:
        self.cloud.faults = faults or FaultModel()
        try:
            return run_tick(self.world, lambda o, m, n: decide(o, self.config, m, n), self.options, dry_run)
        finally:
            self.cloud.faults = FaultModel()

    def wait(self, seconds: float) -> None:
        self.clock.t += seconds

    def queue(self, waiting: int, in_flight: int = 0, chars_each: int = 1000) -> None:
        self.cluster.waiting, self.cluster.in_flight = waiting, in_flight
        self.cluster.queued_chars = waiting * chars_each

    def pods(self) -> list[Pod]:
        """Our pods that exist (and bill), whatever the scaler believes."""
        return self.cloud.live_ours()

    def usd(self) -> float:
        return sum(p.usd_per_hour for p in self.pods())

    def up(self, *pods: Pod, busy: bool = False) -> None:
        """These pods' workers have registered (busy: each holds a chapter)."""
        for pod in pods or tuple(self.pods()):
            pod.ready_at = min(pod.ready_at or self.clock.t, self.clock.t)
            pod.chapter = 0 if busy else None

    def foreign(self, name: str) -> Pod:
        """A pod of another deployment on the same account, with our name prefix."""
        pod = Pod(f"fx-{name}", name, A4000.gpu_type, 0.34, self.clock.t, self.clock.t, deployment=FOREIGN_DEPLOYMENT)
        self.cloud.pods[pod.id] = pod
        return pod

    def configure(self, **changes: object) -> None:
        self.config = replace(self.config, **changes)  # type: ignore[arg-type]
