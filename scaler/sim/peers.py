"""The policies compared by the simulator, each a Peer: one Decision per tick from an Observation.

`table` and `backlog` are the scaler's own `decide`. The others are small pure functions that name a desired
pool size; `sized_decision` turns that size into actions through the same checks (`scaler.caps`), so no peer
can win by breaking a cap. `clairvoyant` knows the whole trace in advance: the cost floor the others are
measured against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from scaler.policy import (
    CreateAction,
    Decision,
    Memory,
    Observation,
    PolicyConfig,
    account,
    binding_cap,
    capped_target,
    decide,
    departures,
    held,
    plan_creates,
    plan_removals,
)
from scaler.sim.cloud import EPOCH
from scaler.sim.traces import Chapter, Trace

#: KEDA's redis-list scaler: `listLength` (pending messages per replica, KEDA's default 5) and the HPA's
#: default scale-down stabilization window.
KEDA_TARGET_PER_POD = 5
KEDA_STABILIZATION_S = 300.0


@dataclass
class ScalerPeer:
    """The real policy (`decide`) with its Memory carried from tick to tick, as the beat task does."""

    name: str
    config: PolicyConfig
    memory: Memory = field(default_factory=Memory)

    @property
    def floor(self) -> int:
        return self.config.min_workers

    def tick(self, observation: Observation, now: float) -> Decision:
        decision, self.memory = decide(observation, self.config, self.memory, now)
        return decision


@dataclass
class KedaPeer:
    """KEDA-style proportional scaling: ceil(pending / target per pod), scale-down stabilized over a window."""

    config: PolicyConfig
    target_per_pod: int = KEDA_TARGET_PER_POD
    window_s: float = KEDA_STABILIZATION_S
    history: tuple[tuple[float, int], ...] = ()
    memory: Memory = field(default_factory=Memory)
    name: str = "keda"

    @property
    def floor(self) -> int:
        return self.config.min_workers

    def tick(self, observation: Observation, now: float) -> Decision:
        desired = None
        if observation.pending is not None:
            desired, self.history = keda_desired(observation.pending, self.target_per_pod, self.history, now,
                                                 self.window_s)
        # Scaling a deployment down stops busy replicas too; Celery's warm shutdown lets the chapter finish.
        decision, self.memory = sized_decision(self.name, desired, observation, self.config, self.memory, now,
                                               drain_busy=True)
        return decision


@dataclass
class FixedPeer:
    """A fixed fleet: always `size` workers (replacing any that fail), never scaled down."""

    config: PolicyConfig
    size: int
    memory: Memory = field(default_factory=Memory)
    name: str = "fixed"

    @property
    def floor(self) -> int:
        return min(self.size, self.config.max_workers)

    def tick(self, observation: Observation, now: float) -> Decision:
        decision, self.memory = sized_decision(self.name, self.size, observation, self.config, self.memory, now)
        return decision


@dataclass
class ClairvoyantPeer:
    """Knows every chapter's arrival and work in advance: the cost floor. It holds the cheapest pool that
    starts each chapter within `SCALER_TARGET_DRAIN_SECONDS` (the wait the `backlog` policy sizes for),
    creating each pod one boot time (plus one tick) before a chapter needs it, keeping it only while that is
    cheaper than booting another. `needs` are (create at, release at) per pod, from `clairvoyant_plan`. It
    acts through `sized_decision` like every peer, so the caps bind it too."""

    config: PolicyConfig
    needs: tuple[tuple[float, float], ...]  # in seconds of the trace
    epoch: float = EPOCH  # the clock's reading at the trace's second 0
    memory: Memory = field(default_factory=Memory)
    name: str = "clairvoyant"

    @property
    def floor(self) -> int:
        return self.config.min_workers

    def tick(self, observation: Observation, now: float) -> Decision:
        t = now - self.epoch
        desired = max(self.config.min_workers, sum(1 for start, end in self.needs if start <= t < end))
        decision, self.memory = sized_decision(self.name, desired, observation, self.config, self.memory, now)
        return decision


def clairvoyant_plan(chapters: Sequence[Chapter], pods: int, wait_s: float, boot_s: float, interval_s: float
                     ) -> tuple[tuple[float, float], ...]:
    """The pods an all-knowing scaler would hold: when each is created and when it is released.

    The cheapest pool that starts every chapter, in queue order, within `wait_s` of its arrival while at most
    `pods` run: a chapter goes to the busy pod that frees last but in time (packing the work onto few pods);
    only when none frees in time is another pod planned, created `boot_s + interval_s` before the chapter
    (so the tick before sees it coming); with `pods` planned it waits for the first to free. A pod idle for
    less than a boot time between chapters is kept; a longer gap releases it, and a new one is created for
    its next chapter. Returns one (create at, release at) per pod lifetime.
    """
    lead = boot_s + interval_s
    free_at: list[float] = []  # per planned pod: when its last chapter ends
    runs: list[list[float]] = []  # per planned pod: start and end of its current lifetime
    needs: list[tuple[float, float]] = []
    for chapter in chapters:
        deadline = chapter.arrival_s + wait_s
        in_time = [i for i, t in enumerate(free_at) if t <= deadline]
        if in_time:
            slot = max(in_time, key=free_at.__getitem__)
        elif len(free_at) < pods:
            free_at.append(chapter.arrival_s)
            runs.append([])
            slot = len(free_at) - 1
        else:
            slot = min(range(len(free_at)), key=free_at.__getitem__)
        start = max(chapter.arrival_s, free_at[slot])
        run = runs[slot]
        if run and start - run[1] > boot_s:  # idling until then costs more than a new boot
            needs.append((run[0] - lead, run[1]))
            run.clear()
        if not run:
            run += [start, start]
        run[1] = free_at[slot] = start + chapter.work_s
    needs += [(run[0] - lead, run[1]) for run in runs if run]
    return tuple(sorted(needs))


def keda_desired(pending: int, target_per_pod: int, history: tuple[tuple[float, int], ...], now: float,
                 window_s: float = KEDA_STABILIZATION_S) -> tuple[int, tuple[tuple[float, int], ...]]:
    """ceil(pending / target) now, but never below what it was over the last `window_s` (HPA stabilization).
    Returns (desired, the history to pass next time)."""
    raw = math.ceil(pending / target_per_pod)
    kept = tuple((t, d) for t, d in history if now - t < window_s) + ((now, raw),)
    return max(d for _, d in kept), kept


def fixed_fleet_size(trace: Trace) -> int:
    """Workers that keep up with the busiest hour of the trace on average (GPU seconds / 3600, rounded up)."""
    return max(1, math.ceil(trace.peak_hour_work_s() / 3600.0))


def sized_decision(policy: str, desired: int | None, observation: Observation, config: PolicyConfig,
                   memory: Memory, now: float, *, drain_busy: bool = False) -> tuple[Decision, Memory]:
    """A Decision that moves the pool toward `desired` within the caps (None: a read failed, hold).

    Built from the policy's own pieces, so no peer can win by skipping one: the same spend accounting
    (`account`), the same departures of stuck, drained, broken and exited workers (`departures`), the same
    caps on the target (`capped_target`, crash-loop breaker included), creates through `plan_creates` and
    removals through `plan_removals` (booting, then idle, then, only with `drain_busy`, busy workers).
    """
    workers = observation.workers
    base, memory = account(policy, observation, memory, now)
    if desired is None or observation.pending is None or not observation.workers_known:
        return held(base, list(observation.failures)), memory
    terminate, drain, leaving, _ = departures(workers, config, now)
    serving = tuple(w for w in workers if w.name not in leaving)
    caps_hit: list[str] = []
    target, over_budget = capped_target(desired, len(serving), base.spent_today_usd, observation.crash_loop,
                                        config, caps_hit)
    creates: list[CreateAction] = []
    if target > len(serving):
        creates = plan_creates(target - len(serving), len(workers), base.usd_per_hour, observation.offers, config,
                               caps_hit, failures=[])
    elif target < len(serving):
        more_terminate, more_drain = plan_removals(serving, target, drain_busy or over_budget, config)
        terminate += more_terminate
        drain += more_drain
    planned = base.usd_per_hour + sum(c.usd_per_hour for c in creates)
    reason = (f"pending {observation.pending}: {policy} wants {desired}; target {target}, serving {len(serving)}"
              + (f"; capped by {', '.join(caps_hit)}" if caps_hit else ""))
    return replace(base, desired=desired, target=target, serving=len(serving), reason=reason,
                   bound_by=binding_cap(caps_hit), caps_hit=tuple(caps_hit), create=tuple(creates),
                   drain=tuple(drain), terminate=tuple(terminate), usd_per_hour_planned=planned), memory


def default_peers(trace: Trace, config: PolicyConfig, boot_s: float = 180.0, interval_s: float = 30.0,
                  cheapest_usd_per_hour: float | None = None) -> list:
    """The comparison: the seed's table, backlog, KEDA-style, a fixed fleet and the clairvoyant floor (planned
    for the pods the caps allow at the cheapest price)."""
    pods = config.max_workers
    if cheapest_usd_per_hour:
        pods = min(pods, math.floor(config.max_usd_per_hour / cheapest_usd_per_hour + 1e-9))
    return [
        ScalerPeer("table", replace(config, policy="table")),
        ScalerPeer("backlog", replace(config, policy="backlog")),
        KedaPeer(replace(config, policy="table")),
        FixedPeer(config, fixed_fleet_size(trace)),
        ClairvoyantPeer(config, clairvoyant_plan(trace.chapters, pods, config.target_drain_s, boot_s, interval_s)),
    ]


PEER_NAMES = ("table", "backlog", "keda", "fixed", "clairvoyant")
