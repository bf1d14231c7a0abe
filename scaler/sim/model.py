"""The discrete-event model: a simulated clock, queue, pods and chapters around one scaling peer.

Between ticks, events run in time order: chapters arrive, pods finish booting, chapters finish. Every
`interval_s` the peer sees an Observation built as the real tick builds it and its Decision is applied:
terminations, then drains, then creates, as scaler.tick does. A create may fail for lack of capacity; its
fallbacks are tried in order, each re-checked against what this tick has committed. Pods boot for a jittered
time, take one chapter at a time in queue order, and are billed from create to terminate.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from scaler import caps
from scaler.policy import Decision, GpuOffer, Observation, PolicyConfig, Worker
from scaler.sim.traces import Chapter, Trace

#: The simulated day starts at 2024-01-01T00:00:00Z, so the policy's UTC-day budget rolls over at midnight.
EPOCH = 1_704_067_200.0


@dataclass(frozen=True)
class SimConfig:
    """The world around the scaler: pods, prices, the provider's capacity and the tick interval."""

    interval_s: float = 30.0  # SCALER_INTERVAL_SECONDS
    boot_s: float = 180.0  # median time from create to a registered Celery worker
    boot_jitter: float = 0.25  # log-normal sigma of the boot time
    stuck_boot_rate: float = 0.0  # share of pods that never come up (the policy's boot timeout replaces them)
    capacity_error_rate: float = 0.05  # share of create attempts answered "no instances available"
    capacity_backoff_s: float = 300.0  # SCALER_CAPACITY_BACKOFF_SECONDS
    #: GPU types in preference order with their hourly prices (RUNPOD_GPU_TYPES, secure cloud).
    offers: tuple[GpuOffer, ...] = (GpuOffer("NVIDIA RTX A4000", 0.34), GpuOffer("NVIDIA GeForce RTX 3090", 0.46))
    settle_s: float = 6 * 3600.0  # after the trace and the queue are done, how long the pool may take to settle


class Peer(Protocol):
    """A scaling policy under test: one decision per tick. `floor` is the pool size it rests at."""

    name: str
    floor: int

    def tick(self, observation: Observation, now: float) -> Decision: ...


@dataclass(eq=False)  # compared by identity: two pods are never the same pod
class Pod:
    name: str
    gpu_type: str
    usd_per_hour: float
    created_at: float
    ready_at: float | None  # None: stuck, never registers
    registered: bool = False
    draining: bool = False
    chapter: int | None = None  # index into the trace's chapters
    started_at: float = 0.0
    terminated_at: float | None = None


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
    cap_violations: int = 0
    interrupted: int = 0  # chapters cut off by a terminate (a policy must never do that)
    capacity_errors: int = 0
    refused_fallbacks: int = 0
    ended_at: float = 0.0
    decisions: int = 0


class Simulation:
    """One peer serving one trace. `run()` ticks until the work is done and the pool has settled."""

    def __init__(self, trace: Trace, peer: Peer, policy_config: PolicyConfig, sim_config: SimConfig,
                 seed: int = 1) -> None:
        self.trace, self.peer, self.config, self.sim = trace, peer, policy_config, sim_config
        # One stream per kind of chance, so the n-th pod boots alike under every policy (common random numbers).
        self.boot_rng = random.Random(f"boot:{seed}")
        self.capacity_rng = random.Random(f"capacity:{seed}")
        self.now = 0.0
        self.events: list[tuple[float, int, str, Pod, int]] = []  # (time, seq, kind, pod, chapter)
        self.seq = 0
        self.queue: deque[int] = deque()
        self.queued_chars = 0
        self.next_arrival = 0
        self.live: dict[str, Pod] = {}
        self.idle: deque[Pod] = deque()  # registered, consuming, no chapter: they take the next arrival
        self.in_flight = 0
        self.remaining = len(trace.chapters)
        self.backoff_until: dict[str, float] = {}
        self.created = 0
        self.run_record = Run(peer.name, trace, policy_config, first_start=[None] * len(trace.chapters),
                              done_at=[None] * len(trace.chapters))

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
        self.run_record.ended_at = self.now
        for pod in self.live.values():  # the run is over: billing stops, a chapter in hand counts as busy time
            pod.terminated_at = self.now
            if pod.chapter is not None:
                self.run_record.busy_s += self.now - pod.started_at
        return self.run_record

    def _settled(self) -> bool:
        return len(self.live) <= self.peer.floor and all(
            p.registered and not p.draining and p.chapter is None for p in self.live.values())

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
            self.now = t
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
                pod.registered = True
                self._free(pod)
            elif kind == "done" and pod.chapter == chapter:
                self._finish(pod)
        self.now = until

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

    # --- the scaler's tick --------------------------------------------------------------------------------
    def observation(self) -> Observation:
        now = self.now
        workers = tuple(self._worker(pod) for pod in self.live.values())
        offers = tuple(o for o in self.sim.offers if self.backoff_until.get(o.gpu_type, -1.0) <= now)
        return Observation(waiting=len(self.queue), in_flight=self.in_flight, workers=workers, offers=offers,
                           queued_chars=self.queued_chars)

    def _worker(self, pod: Pod) -> Worker:
        if pod.draining:
            state = "draining"
        elif not pod.registered:
            state = "booting"
        else:
            state = "busy" if pod.chapter is not None else "idle"
        return Worker(name=pod.name, state=state, usd_per_hour=pod.usd_per_hour, created_at=EPOCH + pod.created_at,
                      gpu_type=pod.gpu_type, busy=pod.chapter is not None, consuming=not pod.draining,
                      last_seen_at=EPOCH + self.now if pod.registered else None)

    def _tick(self) -> None:
        decision = self.peer.tick(self.observation(), EPOCH + self.now)
        self.run_record.decisions += 1
        if decision.held:
            return
        for name in decision.terminate:
            if name in self.live:
                self._terminate(self.live[name])
        for name in decision.drain:
            pod = self.live.get(name)
            if pod is not None and not pod.draining:
                pod.draining = True  # cancel_consumer: the chapter in hand finishes, nothing new is taken
                if pod in self.idle:
                    self.idle.remove(pod)
        self._create(decision)
        self._dispatch()
        usd = sum(p.usd_per_hour for p in self.live.values())
        if len(self.live) > self.config.max_workers or caps.over_usd_cap(usd, self.config.max_usd_per_hour):
            self.run_record.cap_violations += 1
        self.run_record.samples.append(Sample(self.now, len(self.queue), self.in_flight, len(self.live), usd))

    def _create(self, decision: Decision) -> None:
        """The creates as scaler.tick's executor runs them: each offer re-checked against what is committed
        (the pool before this tick's terminations, plus what this tick created); a capacity error backs that
        type off and tries the next; an action no type can serve ends the creating for this tick.

        The planned type is still created when a re-check refuses it, and that refusal is counted as a
        violation: the executor's check is a guard, and a policy that needs it has a bug.
        """
        committed, counted = decision.usd_per_hour, decision.current
        for action in decision.create:
            created = False
            for index, offer in enumerate((GpuOffer(action.gpu_type, action.usd_per_hour), *action.fallbacks)):
                if self.backoff_until.get(offer.gpu_type, -1.0) > self.now:
                    continue
                fits = counted < self.config.max_workers and caps.fits_usd_cap(
                    committed, offer.usd_per_hour, self.config.max_usd_per_hour)
                if not fits and index > 0:
                    self.run_record.refused_fallbacks += 1
                    continue
                if not fits:
                    self.run_record.cap_violations += 1  # planned over a cap
                if self.capacity_rng.random() < self.sim.capacity_error_rate:
                    self.run_record.capacity_errors += 1
                    self.backoff_until[offer.gpu_type] = self.now + self.sim.capacity_backoff_s
                    continue
                self._spawn(offer.gpu_type, offer.usd_per_hour)
                committed += offer.usd_per_hour
                counted += 1
                created = True
                break
            if not created:
                return

    def _spawn(self, gpu_type: str, price: float) -> None:
        self.created += 1
        stuck = self.boot_rng.random() < self.sim.stuck_boot_rate
        boot = self.sim.boot_s * self.boot_rng.lognormvariate(0.0, self.sim.boot_jitter)
        pod = Pod(f"audiobook-gpu-{self.created:05d}", gpu_type, price, self.now,
                  None if stuck else self.now + boot)
        self.live[pod.name] = pod
        self.run_record.pods.append(pod)
        if pod.ready_at is not None:
            self._schedule(pod.ready_at, "ready", pod)

    def _terminate(self, pod: Pod) -> None:
        pod.terminated_at = self.now
        del self.live[pod.name]
        if pod in self.idle:
            self.idle.remove(pod)
        if pod.chapter is not None:  # killed mid-chapter: the broker redelivers it first
            self.run_record.interrupted += 1
            self.run_record.busy_s += self.now - pod.started_at
            self.queue.appendleft(pod.chapter)
            self.queued_chars += self.trace.chapters[pod.chapter].chars
            self.in_flight -= 1
            pod.chapter = None


def simulate(trace: Trace, peer: Peer, policy_config: PolicyConfig, sim_config: SimConfig | None = None,
             seed: int = 1) -> Run:
    """Serve `trace` with `peer` and return what happened."""
    return Simulation(trace, peer, policy_config, sim_config or SimConfig(), seed).run()
