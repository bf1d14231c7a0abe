"""The discrete-event model: a simulated clock, queue and chapters around the scaler's real execution core.

Between ticks, events run in time order: chapters arrive, pods finish booting, chapters finish. Every
`interval_s` the core (`scaler.core.run_tick`, the code the live tick runs) reads the simulated world, asks the
peer for a Decision and executes it through simulated pods (`scaler.sim.cloud`): the same reconcile, the same
creates with fallbacks and backoff, the same drains and terminates. Pods boot for a jittered time, take one
chapter at a time in queue order, and are billed from create to terminate. A FaultModel makes the provider lie.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from scaler.core import CoreOptions, run_tick
from scaler.policy import Decision, GpuOffer, Memory, Observation, PolicyConfig
from scaler.records import TickRecord
from scaler.sim.cloud import DEPLOYMENT, EPOCH, CloudStats, Pod, SimClock, SimCloud
from scaler.sim.cluster import SimCluster
from scaler.sim.faults import FaultModel
from scaler.sim.traces import Chapter, Trace
from scaler.state import MemoryStore
from scaler.world import World

__all__ = ["EPOCH", "Peer", "Pod", "Run", "Sample", "SimConfig", "Simulation", "simulate"]


@dataclass(frozen=True)
class SimConfig:
    """The world around the scaler: pods, prices, the provider's capacity and the tick interval."""

    interval_s: float = 30.0  # SCALER_INTERVAL_SECONDS
    boot_s: float = 180.0  # median time from create to a registered Celery worker
    boot_jitter: float = 0.25  # log-normal sigma of the boot time
    stuck_boot_rate: float = 0.0  # share of pods that never come up (the boot timeout replaces them)
    capacity_error_rate: float = 0.05  # share of create attempts answered "no instances available"
    capacity_backoff_s: float = 300.0  # SCALER_CAPACITY_BACKOFF_SECONDS
    #: GPU types in preference order with their hourly prices (RUNPOD_GPU_TYPES, secure cloud).
    offers: tuple[GpuOffer, ...] = (GpuOffer("NVIDIA RTX A4000", 0.34), GpuOffer("NVIDIA GeForce RTX 3090", 0.46))
    settle_s: float = 6 * 3600.0  # after the trace and the queue are done, how long the pool may take to settle
    crash_loop_workers: int = 3  # SCALER_CRASH_LOOP_WORKERS
    crash_loop_cooloff_s: float = 1800.0  # SCALER_CRASH_LOOP_COOLOFF_SECONDS


class Peer(Protocol):
    """A scaling policy under test: one decision per tick. `floor` is the pool size it rests at."""

    name: str
    floor: int

    def tick(self, observation: Observation, now: float) -> Decision: ...


@dataclass
class Sample:
    """The world right after one tick's actions."""

    t: float
    waiting: int
    in_flight: int
    pods: int
    usd_per_hour: float


@dataclass
class Run:
    """Everything one simulation recorded; report.py turns it into a row."""

    peer: str
    trace: Trace
    policy_config: PolicyConfig
    pods: list[Pod] = field(default_factory=list)
    first_start: list[float | None] = field(default_factory=list)  # per chapter
    done_at: list[float | None] = field(default_factory=list)
    busy_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    cloud: CloudStats = field(default_factory=CloudStats)
    refused_creates: int = 0  # creates the executor's cap re-check refused: a policy that needs it has a bug
    held: int = 0  # ticks that held because a read failed or lied
    crash_loop_ticks: int = 0  # ticks with the crash-loop breaker open
    unknown_after_faults: int | None = None  # our pods the scaler does not know, 2 ticks after the faults stopped
    ended_at: float = 0.0
    decisions: int = 0

    @property
    def cap_violations(self) -> int:
        """Instants at which our pods exceeded a cap (the cloud's truth, not the scaler's belief)."""
        return self.cloud.over_max_workers + self.cloud.over_max_usd

    @property
    def interrupted(self) -> int:
        """Chapters cut off by a terminate: a busy worker killed."""
        return self.cloud.busy_terminated

    @property
    def capacity_errors(self) -> int:
        return self.cloud.capacity_errors


class Simulation:
    """One peer serving one trace through the execution core. `run()` ticks until the work is done and the pool
    has settled; `run_ticks(n)` ticks n times."""

    def __init__(self, trace: Trace, peer: Peer, policy_config: PolicyConfig, sim_config: SimConfig,
                 seed: int = 1, faults: FaultModel | None = None) -> None:
        self.trace, self.peer, self.config, self.sim = trace, peer, policy_config, sim_config
        self.clock = SimClock()
        self.cloud = SimCloud(self.clock, sim_config.offers, max_workers=policy_config.max_workers,
                              max_usd_per_hour=policy_config.max_usd_per_hour, boot_s=sim_config.boot_s,
                              boot_jitter=sim_config.boot_jitter, stuck_boot_rate=sim_config.stuck_boot_rate,
                              capacity_error_rate=sim_config.capacity_error_rate, faults=faults, seed=seed)
        self.cluster = SimCluster(self.cloud)
        self.store = MemoryStore()
        self.names = 0
        self.world = World(provider=self.cloud, cluster=self.cluster, store=self.store, clock=self.clock,
                           new_name=self._new_name)
        self.options = CoreOptions(config=policy_config, deployment=DEPLOYMENT,
                                   capacity_backoff_s=sim_config.capacity_backoff_s,
                                   crash_loop_workers=sim_config.crash_loop_workers,
                                   crash_loop_cooloff_s=sim_config.crash_loop_cooloff_s)
        self.cloud.on_spawn, self.cloud.on_terminate, self.cluster.on_drain = self._spawned, self._gone, self._drained
        self.events: list[tuple[float, int, str, Pod, int]] = []  # (time, seq, kind, pod, chapter)
        self.seq = 0
        self.queue: deque[int] = deque()
        self.queued_chars = 0
        self.next_arrival = 0
        self.idle: deque[Pod] = deque()  # registered, consuming, no chapter: they take the next arrival
        self.in_flight = 0
        self.remaining = len(trace.chapters)
        self.run_record = Run(peer.name, trace, policy_config, pods=self.cloud.ours, cloud=self.cloud.stats,
                              first_start=[None] * len(trace.chapters), done_at=[None] * len(trace.chapters))
        self.last: TickRecord | None = None

    @property
    def now(self) -> float:
        return self.clock.t

    # --- the loop ---------------------------------------------------------------------------------------
    def run(self) -> Run:
        interval = self.sim.interval_s
        last_arrival = self.trace.chapters[-1].arrival_s if self.trace.chapters else 0.0
        horizon = max(self.trace.duration_s, last_arrival)
        tick_at = 0.0
        while True:
            self._advance(tick_at)
            self._tick()
            finished = self.remaining == 0 and tick_at >= horizon
            if finished and self._settled():
                break
            if tick_at >= horizon + self.sim.settle_s and (finished or tick_at >= horizon + 4 * self.sim.settle_s):
                break  # the pool never settles (or the work never ends): stop and bill what is left
            tick_at += interval
        return self._end()

    def run_ticks(self, ticks: int, clean_ticks: int = 2) -> Run:
        """`ticks` ticks with the fault model, then `clean_ticks` without it; then count the pods of ours the
        scaler does not know (every one of them bills unseen)."""
        for index in range(ticks + clean_ticks):
            if index == ticks:
                self.cloud.faults = FaultModel()
            self._advance(index * self.sim.interval_s)
            self._tick()
        known = {r.instance_id for r in self.store.workers.values()}
        self.run_record.unknown_after_faults = sum(1 for p in self.cloud.live_ours() if p.id not in known)
        return self._end()

    def _end(self) -> Run:
        self.run_record.ended_at = self.now
        for pod in self.cloud.live_ours():  # the run is over: billing stops, a chapter in hand counts as busy time
            pod.terminated_at = self.now
            if pod.chapter is not None:
                self.run_record.busy_s += self.now - pod.started_at
        return self.run_record

    def _settled(self) -> bool:
        live = self.cloud.live_ours()
        return len(live) <= self.peer.floor and all(
            p.registered(self.now) and not p.draining and p.chapter is None for p in live)

    def _advance(self, until: float) -> None:
        """Run every arrival and pod event up to `until`, in time order."""
        chapters = self.trace.chapters
        while True:
            next_event = self.events[0][0] if self.events else None
            next_arrival = chapters[self.next_arrival].arrival_s if self.next_arrival < len(chapters) else None
            candidates = [t for t in (next_event, next_arrival) if t is not None and t <= until]
            if not candidates:
                break
            t = min(candidates)
            self.clock.t = t
            if next_arrival is not None and next_arrival == t:
                index = self.next_arrival
                self.next_arrival += 1
                self.queue.append(index)
                self.queued_chars += chapters[index].chars
                self._dispatch()
                continue
            _, _, kind, pod, chapter = heapq.heappop(self.events)
            if pod.terminated_at is not None:
                continue  # the pod went away; its event no longer happens
            if kind == "ready":
                if pod.broken is None:
                    self._free(pod)
            elif kind == "done" and pod.chapter == chapter:
                self._finish(pod)
        self.clock.t = until

    def _schedule(self, t: float, kind: str, pod: Pod, chapter: int = -1) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, pod, chapter))

    # --- chapters ---------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while self.queue and self.idle:
            self._start(self.idle.popleft(), self.queue.popleft())

    def _start(self, pod: Pod, index: int) -> None:
        chapter: Chapter = self.trace.chapters[index]
        self.queued_chars -= chapter.chars
        if self.run_record.first_start[index] is None:
            self.run_record.first_start[index] = self.now
        pod.chapter, pod.started_at = index, self.now
        self.in_flight += 1
        self._schedule(self.now + chapter.work_s, "done", pod, index)

    def _finish(self, pod: Pod) -> None:
        assert pod.chapter is not None
        self.run_record.done_at[pod.chapter] = self.now
        self.run_record.busy_s += self.now - pod.started_at
        pod.chapter = None
        self.in_flight -= 1
        self.remaining -= 1
        self._free(pod)

    def _free(self, pod: Pod) -> None:
        """A registered pod without a chapter: takes the next one unless it is draining."""
        if pod.draining:
            return
        if self.queue:
            self._start(pod, self.queue.popleft())
        else:
            self.idle.append(pod)

    # --- the world's callbacks (the core acts through the cloud and the cluster) ------------------------
    def _new_name(self) -> str:
        self.names += 1
        return f"audiobook-gpu-{self.names:05d}"

    def _spawned(self, pod: Pod) -> None:
        if pod.ready_at is not None:
            self._schedule(pod.ready_at, "ready", pod)

    def _drained(self, pod: Pod) -> None:
        if pod in self.idle:
            self.idle.remove(pod)

    def _gone(self, pod: Pod) -> None:
        if pod in self.idle:
            self.idle.remove(pod)
        if pod.chapter is not None:  # killed mid-chapter: the broker redelivers it first
            self.run_record.busy_s += self.now - pod.started_at
            self.queue.appendleft(pod.chapter)
            self.queued_chars += self.trace.chapters[pod.chapter].chars
            self.in_flight -= 1
            pod.chapter = None

    # --- the scaler's tick --------------------------------------------------------------------------------
    def _tick(self) -> None:
        self.cloud.between_ticks()
        self.cluster.waiting, self.cluster.in_flight = len(self.queue), self.in_flight
        self.cluster.queued_chars = self.queued_chars
        self.cluster.oldest_queued_at = EPOCH + self.trace.chapters[self.queue[0]].arrival_s if self.queue else None
        record = run_tick(self.world, self._decide, self.options)
        self.last = record
        self.run_record.decisions += 1
        self.run_record.held += record.outcome == "held"
        self.run_record.crash_loop_ticks += bool(record.health and record.health.crash_loop)
        if record.executed is not None:
            self.run_record.refused_creates += sum(1 for f in record.executed.failures if "refused: max_" in f)
        self._dispatch()
        live = self.cloud.live_ours()
        self.run_record.samples.append(Sample(self.now, len(self.queue), self.in_flight, len(live),
                                              sum(p.usd_per_hour for p in live)))

    def _decide(self, observation: Observation, memory: Memory, now: float) -> tuple[Decision, Memory]:
        return self.peer.tick(observation, now), memory


def simulate(trace: Trace, peer: Peer, policy_config: PolicyConfig, sim_config: SimConfig | None = None,
             seed: int = 1, faults: FaultModel | None = None) -> Run:
    """Serve `trace` with `peer` and return what happened."""
    return Simulation(trace, peer, policy_config, sim_config or SimConfig(), seed, faults).run()
