"""The policies compared by the simulator, each a Peer: one Decision per tick from an Observation.

`table` and `backlog` are the scaler's own `decide`. The others are small pure functions that name a desired
pool size; `sized_decision` turns that size into actions through the same checks (`scaler.caps`), so no peer
can win by breaking a cap. `backlog-release` and `backlog-v2` are proposals (docs/simulator.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from scaler import caps
from scaler.policy import MIN_WINDOW_SHARE, CreateAction, Decision, Memory, Observation, PolicyConfig, Worker, decide
from scaler.sim.traces import Trace

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
class ReleasePeer:
    """Proposed rule alone: the real backlog decision, plus releasing a surplus worker idle for `release_s`.

    The scaler scales down only after pending = 0 for SCALER_IDLE_SECONDS; under all-day traffic in-flight
    chapters keep pending above 0, so a pool grown for a spike is held until the night. An idle worker means
    nothing is waiting, so one that stayed idle as long as a boot takes is pure cost.
    """

    config: PolicyConfig
    release_s: float
    memory: Memory = field(default_factory=Memory)
    idle_since: dict[str, float] = field(default_factory=dict)
    name: str = "backlog-release"

    @property
    def floor(self) -> int:
        return self.config.min_workers

    def tick(self, observation: Observation, now: float) -> Decision:
        decision, self.memory = decide(observation, self.config, self.memory, now)
        self.idle_since = track_idle(observation.workers, self.idle_since, now)
        return release_idle(decision, observation, self.idle_since, self.release_s, now)


@dataclass
class BacklogV2Peer:
    """Proposed: backlog sizing that also counts what busy workers free up within the window (`work_workers`),
    through the same caps, with surplus workers released once idle `release_s` (as `ReleasePeer`)."""

    config: PolicyConfig
    release_s: float
    memory: Memory = field(default_factory=Memory)
    idle_since: dict[str, float] = field(default_factory=dict)
    name: str = "backlog-v2"

    @property
    def floor(self) -> int:
        return self.config.min_workers

    def tick(self, observation: Observation, now: float) -> Decision:
        self.idle_since = track_idle(observation.workers, self.idle_since, now)
        desired = None
        if observation.waiting is not None and observation.in_flight is not None \
                and observation.queued_chars is not None:
            desired = work_workers(observation.waiting, observation.in_flight, observation.queued_chars,
                                   observation.workers, self.config, now)
        decision, self.memory = sized_decision(self.name, desired, observation, self.config, self.memory, now,
                                               remove_idle=False)
        return release_idle(decision, observation, self.idle_since, self.release_s, now)


def work_workers(waiting: int, in_flight: int, queued_chars: int, workers: tuple[Worker, ...],
                 config: PolicyConfig, now: float) -> int:
    """Like `scaler.policy.backlog_workers`, but a busy worker also offers the window less the rest of its
    chapter (taken as one average queued chapter), so a busy pool that can drain the queue in time is enough.

    `backlog_workers` counts busy workers only for their own chapter and asks for at least one more worker
    whenever anything waits, so under steady traffic it grows by one a boot until max_workers.
    """
    if waiting <= 0:
        return in_flight
    window = config.target_drain_s
    floor = window * MIN_WINDOW_SHARE
    backlog_s = queued_chars * config.seconds_per_char
    chapter_s = backlog_s / waiting
    offers = []
    for worker in workers:
        if worker.state == "idle":
            offers.append(window)
        elif worker.state == "busy":
            offers.append(max(window - chapter_s, floor))
        elif worker.state == "booting":
            offers.append(max(window - max(0.0, config.boot_s - (now - worker.created_at)), floor))
    offers.sort(reverse=True)
    covered, needed = 0.0, 0
    for offer in offers:
        if covered >= backlog_s:
            break
        covered += offer
        needed += 1
    if covered < backlog_s:
        needed += min(waiting, math.ceil((backlog_s - covered) / max(window - config.boot_s, floor) - 1e-9))
    return max(in_flight, needed, 1)


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


def track_idle(workers: tuple[Worker, ...], idle_since: dict[str, float], now: float) -> dict[str, float]:
    """Since when each worker has been seen idle without a break (workers not idle now are dropped)."""
    return {w.name: idle_since.get(w.name, now) for w in workers if w.state == "idle"}


def release_idle(decision: Decision, observation: Observation, idle_since: dict[str, float], release_s: float,
                 now: float) -> Decision:
    """`decision` plus drains of surplus workers idle for `release_s` or more (dearest, then longest idle)."""
    if decision.held or observation.waiting != 0:
        return decision
    leaving = set(decision.drain) | set(decision.terminate)
    # Serving workers the decision already removes (a stuck boot may count here too: then one fewer goes).
    removed = sum(1 for w in observation.workers if w.state != "draining" and w.name in leaving)
    surplus = decision.serving - removed - decision.target
    stale = sorted((w for w in observation.workers
                    if w.name not in leaving and w.state == "idle" and now - idle_since.get(w.name, now) >= release_s),
                   key=lambda w: (-w.usd_per_hour, idle_since[w.name]))
    released = tuple(w.name for w in stale[:max(0, surplus)])
    if not released:
        return decision
    return replace(decision, drain=decision.drain + released,
                   reason=f"{decision.reason}; released {len(released)} idle for {release_s:g}s")


def sized_decision(policy: str, desired: int | None, observation: Observation, config: PolicyConfig,
                   memory: Memory, now: float, *, drain_busy: bool = False,
                   remove_idle: bool = True) -> tuple[Decision, Memory]:
    """A Decision that moves the pool toward `desired` within the caps (None: a read failed, hold).

    Reconciles like the scaler (drained and stuck workers go), charges the daily budget as `decide` does,
    creates through `scaler.caps` (count, max step, USD per hour with each offer's price) and removes
    booting, then idle, then (only with `drain_busy`) busy workers, the last two through a drain.
    `remove_idle=False` leaves the surplus to the caller (`release_idle`) unless the budget is spent.
    """
    workers = observation.workers
    usd_now = sum(w.usd_per_hour for w in workers)
    day, spent = caps.accrue_spend(memory.day, memory.spent_today_usd, memory.accounted_at,
                                   max(memory.usd_per_hour, usd_now), now)
    memory = replace(memory, day=day, spent_today_usd=spent, accounted_at=now, usd_per_hour=usd_now)
    base = Decision(policy=policy, pending=observation.pending, desired=len(workers), target=len(workers),
                    current=len(workers), serving=len(workers), reason="", usd_per_hour=usd_now,
                    usd_per_hour_planned=usd_now, spent_today_usd=spent)
    if desired is None or not observation.workers_known:
        return replace(base, reason=f"hold at {len(workers)}: a read failed", held=True), memory
    terminate = [w.name for w in workers if w.terminating or w.exited
                 or (w.state == "booting" and not w.requested and now - w.created_at >= config.boot_timeout_s)
                 or (w.state == "draining" and not w.consuming and not w.busy)]
    serving = [w for w in workers if w.name not in terminate and w.state != "draining"]
    target = max(desired, config.min_workers)
    caps_hit: list[str] = []
    if caps.budget_exhausted(spent, config.daily_budget_usd) and target > config.min_workers:
        caps_hit.append("daily_budget")
        target, drain_busy, remove_idle = config.min_workers, True, True
    if target > config.max_workers:
        caps_hit.append("max_workers")
        target = config.max_workers
    creates: list[CreateAction] = []
    drain: list[str] = []
    if target > len(serving):
        wanted = target - len(serving)
        room = caps.worker_headroom(len(workers), config.max_workers)
        if wanted > room:
            caps_hit.append("max_workers")
            wanted = room
        if wanted > config.max_step:
            caps_hit.append("max_step")
            wanted = config.max_step
        committed = usd_now
        for _ in range(wanted):
            fitting = [o for o in observation.offers
                       if caps.fits_usd_cap(committed, o.usd_per_hour, config.max_usd_per_hour)]
            if not fitting:
                if observation.offers:
                    caps_hit.append("max_usd_per_hour")
                break
            creates.append(CreateAction(fitting[0].gpu_type, fitting[0].usd_per_hour, tuple(fitting[1:])))
            committed += fitting[0].usd_per_hour
    elif target < len(serving) and remove_idle:
        booting = sorted((w for w in serving if w.state == "booting" and not w.requested), key=lambda w: -w.created_at)
        idle = sorted((w for w in serving if w.state == "idle"), key=lambda w: -w.usd_per_hour)
        busy = sorted((w for w in serving if w.state == "busy"), key=lambda w: -w.usd_per_hour) if drain_busy else []
        for w in [*booting, *idle, *busy][:len(serving) - target]:
            (terminate if w.state == "booting" else drain).append(w.name)
    planned = usd_now + sum(c.usd_per_hour for c in creates)
    reason = (f"pending {observation.pending}: {policy} wants {desired}; target {target}, serving {len(serving)}"
              + (f"; capped by {', '.join(caps_hit)}" if caps_hit else ""))
    return replace(base, desired=desired, target=target, serving=len(serving), reason=reason,
                   bound_by=caps_hit[-1] if caps_hit else None, caps_hit=tuple(caps_hit), create=tuple(creates),
                   drain=tuple(drain), terminate=tuple(terminate), usd_per_hour_planned=planned), memory


def default_peers(trace: Trace, config: PolicyConfig, release_s: float | None = None) -> list:
    """The comparison: the seed's table, backlog, KEDA-style, a fixed fleet and the two proposals."""
    release = release_s if release_s is not None else config.boot_s
    return [
        ScalerPeer("table", replace(config, policy="table")),
        ScalerPeer("backlog", replace(config, policy="backlog")),
        KedaPeer(replace(config, policy="table")),
        FixedPeer(config, fixed_fleet_size(trace)),
        ReleasePeer(replace(config, policy="backlog"), release),
        BacklogV2Peer(replace(config, policy="backlog"), release),
    ]


PEER_NAMES = ("table", "backlog", "keda", "fixed", "backlog-release", "backlog-v2")
