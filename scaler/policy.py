"""The scaling policy: `decide(observation, config, memory, now) -> (Decision, Memory)`.

Pure: plain frozen dataclasses in and out, no I/O and no clock reads (the tick and the policy simulator
pass `now`). The cap checks it uses live in `scaler.caps`. docs/scaler.md states the rules in prose.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from scaler import caps

WorkerState = Literal["booting", "idle", "busy", "draining", "silent"]
PolicyName = Literal["table", "backlog"]
OrphanRule = Literal["adopt", "terminate"]

#: The step table on pending = waiting + in-flight: (first pending, last pending, workers at first,
#: workers at last). Inside a band the count is interpolated linearly and rounded up.
TABLE_BANDS: tuple[tuple[int, int, int, int], ...] = (
    (1, 10, 1, 1),
    (11, 50, 2, 5),
    (51, 200, 5, 20),
    (201, 500, 20, 50),
)
TABLE_CEILING = 50  # workers for 501 pending and more

#: Backlog policy: a worker whose boot takes the whole drain window still counts for this share of it.
MIN_WINDOW_SHARE = 0.1


@dataclass(frozen=True)
class Worker:
    """One worker of the pool as the tick saw it (a pod or a local process joined with its Celery worker)."""

    name: str
    state: WorkerState
    usd_per_hour: float
    created_at: float
    gpu_type: str = ""
    busy: bool = False  # holds an active or reserved chapter (a draining worker may still be busy)
    consuming: bool = True  # its Celery worker consumes gpu-long; False once a drain has taken effect
    owned: bool = True  # False: carries the scaler's marker but the scaler did not create it (orphan)
    requested: bool = False  # create sent, not listed yet: counts against the caps, cannot be terminated
    exited: bool = False  # the provider says it stopped: it will never serve
    terminating: bool = False  # terminate sent; counted until the provider stops listing it
    last_seen_at: float | None = None  # when its Celery worker last answered; None: never registered
    error: str | None = None  # what the worker published when its model could not load


@dataclass(frozen=True)
class GpuOffer:
    """A GPU type that may be created now (not backing off), with its hourly price."""

    gpu_type: str
    usd_per_hour: float


@dataclass(frozen=True)
class Observation:
    """What one tick read. None means the read failed: never taken as zero."""

    waiting: int | None
    in_flight: int | None
    workers: tuple[Worker, ...] = ()
    offers: tuple[GpuOffer, ...] = ()  # in preference order (RUNPOD_GPU_TYPES)
    queued_chars: int | None = None  # characters of the waiting chapters (backlog policy)
    workers_known: bool = True  # False when the provider listing or Celery inspect failed
    failures: tuple[str, ...] = ()
    crash_loop: str | None = None  # the crash-loop breaker is open: the last worker's error (stop creating)
    oldest_waiting_s: float | None = None  # age of the oldest waiting chapter, None when unknown

    @property
    def pending(self) -> int | None:
        if self.waiting is None or self.in_flight is None:
            return None
        return self.waiting + self.in_flight


@dataclass(frozen=True)
class PolicyConfig:
    """The policy's knobs; defaults match settings.py (the tick builds this from the settings)."""

    policy: PolicyName = "table"
    min_workers: int = 0
    max_workers: int = 50
    max_usd_per_hour: float = 25.0
    daily_budget_usd: float | None = None
    idle_s: float = 600.0
    max_step: int = 10
    boot_timeout_s: float = 900.0
    boot_s: float = 180.0
    target_drain_s: float = 600.0
    seconds_per_char: float = 0.004
    orphans: OrphanRule = "adopt"


@dataclass(frozen=True)
class Memory:
    """What the policy carries from one tick to the next (kept in Redis by the tick)."""

    last_nonempty_at: float | None = None
    day: str = ""  # UTC day that spent_today_usd belongs to
    spent_today_usd: float = 0.0
    accounted_at: float | None = None  # until when spend has been charged
    usd_per_hour: float = 0.0  # pool price at the previous tick
    idle_since: dict[str, float] = field(default_factory=dict)  # worker -> seen idle without a break since

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Memory:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass(frozen=True)
class CreateAction:
    """Create one worker of `gpu_type`; on a capacity error try `fallbacks` in order (each re-checked)."""

    gpu_type: str
    usd_per_hour: float
    fallbacks: tuple[GpuOffer, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one tick."""

    policy: str
    pending: int | None
    desired: int  # what the policy asks for, before min_workers and the caps
    target: int  # pool size aimed at, after min_workers and the caps
    current: int  # workers counted against the caps: booting, draining and requested included
    serving: int  # current minus those leaving (draining or being terminated)
    reason: str
    bound_by: str | None = None  # the cap that bound last (the tightest): see CAPS
    caps_hit: tuple[str, ...] = ()  # every cap that cut something, in the order applied
    create: tuple[CreateAction, ...] = ()
    drain: tuple[str, ...] = ()
    terminate: tuple[str, ...] = ()
    usd_per_hour: float = 0.0  # now, over every counted worker
    usd_per_hour_planned: float = 0.0  # now plus the creates (terminations not subtracted)
    spent_today_usd: float = 0.0
    failures: tuple[str, ...] = ()
    held: bool = False  # a read failed: the size is held, no action is taken

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples), as kept in the decision records."""
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


CAPS = ("max_workers", "max_usd_per_hour", "daily_budget", "max_step", "booting", "crash_loop")


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def table_workers(pending: int) -> int:
    """The `table` policy: workers for `pending` messages (see TABLE_BANDS; exact integer arithmetic)."""
    if pending <= 0:
        return 0
    for first, last, workers_first, workers_last in TABLE_BANDS:
        if pending <= last:
            return workers_first + ceil_div((pending - first) * (workers_last - workers_first), last - first)
    return TABLE_CEILING


def backlog_workers(waiting: int, in_flight: int, queued_chars: int, serving: tuple[Worker, ...],
                    config: PolicyConfig, now: float) -> int:
    """The `backlog` policy: the waiting characters x seconds per character must be worked off within
    `target_drain_s` by the pool.

    Each worker offers part of that window: an idle one all of it, a busy one the window less the rest of
    its chapter (taken as one average waiting chapter), a booting one the window less its remaining boot
    time (`boot_s` less its age), a new one the window less `boot_s`; none offers less than
    MIN_WINDOW_SHARE of it. The pool is the fewest workers whose offers cover the backlog (new ones at most
    one per waiting chapter), and never fewer than the chapters in flight. Counting what busy workers free
    up is what keeps a steadily busy pool from growing by one worker per boot until the cap.
    """
    if waiting <= 0:
        return in_flight
    window = config.target_drain_s
    floor = window * MIN_WINDOW_SHARE
    backlog_s = queued_chars * config.seconds_per_char
    chapter_s = backlog_s / waiting
    offers = []
    for worker in serving:
        if worker.state == "idle":
            offers.append(window)
        elif worker.state == "busy":
            offers.append(max(window - chapter_s, floor))
        elif worker.state == "booting":
            remaining_boot = max(0.0, config.boot_s - (now - worker.created_at))
            offers.append(max(window - remaining_boot, floor))
    offers.sort(reverse=True)
    covered, needed = 0.0, 0
    for offer in offers:
        if covered >= backlog_s:
            break
        covered += offer
        needed += 1
    if covered < backlog_s:
        new_worker_s = max(window - config.boot_s, floor)
        needed += min(waiting, math.ceil((backlog_s - covered) / new_worker_s - 1e-9))
    return max(in_flight, needed, 1)


def idle_release(serving: tuple[Worker, ...], surplus: int, idle_since: dict[str, float], release_s: float,
                 now: float) -> list[str]:
    """Backlog policy: surplus workers idle for `release_s` or more, dearest then longest idle first.

    An idle worker means nothing waits for it; keeping one idle longer than a boot takes costs more than
    booting another when work returns. In-flight chapters elsewhere keep pending above 0 all day, so without
    this a pool grown for a spike would be held until the night.
    """
    stale = sorted((w for w in serving if w.state == "idle" and now - idle_since.get(w.name, now) >= release_s),
                   key=lambda w: (-w.usd_per_hour, idle_since[w.name]))
    return [w.name for w in stale[:max(0, surplus)]]


def decide(observation: Observation, config: PolicyConfig, memory: Memory, now: float) -> tuple[Decision, Memory]:
    """One scaling decision. Never exceeds a cap; holds the size when a read failed."""
    workers = observation.workers
    base, new_memory = account(config.policy, observation, memory, now)
    pending = observation.pending
    last_nonempty = memory.last_nonempty_at
    if last_nonempty is None or (pending is not None and pending > 0):
        last_nonempty = now  # a fresh state starts the idle window now rather than scaling down at once
    idle_since = {w.name: memory.idle_since.get(w.name, now) for w in workers if w.state == "idle"}
    new_memory = replace(new_memory, last_nonempty_at=last_nonempty, idle_since=idle_since)
    failures = list(observation.failures)
    spent = base.spent_today_usd
    usd_now = base.usd_per_hour

    if pending is None or not observation.workers_known:
        return held(base, failures), new_memory

    terminate, drain, leaving, notes = departures(workers, config, now)
    serving = tuple(w for w in workers if w.name not in leaving)

    if config.policy == "backlog" and observation.queued_chars is not None:
        desired = backlog_workers(observation.waiting or 0, observation.in_flight or 0,
                                  observation.queued_chars, serving, config, now)
        wants = f"backlog {observation.queued_chars} chars wants {desired}"
    else:
        desired = table_workers(pending)
        wants = f"table wants {desired}"
        if config.policy == "backlog":
            wants += " (queued characters unknown: table used)"
    caps_hit: list[str] = []
    target, over_budget = capped_target(desired, len(serving), spent, observation.crash_loop, config, caps_hit)

    creates: list[CreateAction] = []
    booting = [w for w in serving if w.state == "booting"]
    usd_serving = sum(w.usd_per_hour for w in serving)
    if target > len(serving):
        creates = plan_creates(target - len(serving), len(workers), usd_now, observation.offers, config,
                                caps_hit, failures)
    elif booting and len(serving) - len(booting) < target:
        caps_hit.append("booting")  # the booting workers already cover the target: wait for them
    shed = len(serving) - target
    over_cap = len(workers) > config.max_workers or caps.over_usd_cap(usd_serving, config.max_usd_per_hour)
    if shed > 0 or over_cap:
        forced = over_budget or over_cap
        idle_for = now - last_nonempty
        if forced or (pending == 0 and idle_for >= config.idle_s):
            more_terminate, more_drain = plan_removals(serving, target, forced, config)
            terminate += more_terminate
            drain += more_drain
            if forced:
                notes.append("over budget" if over_budget else "over a cap")
        elif config.policy == "backlog" and observation.waiting == 0 and \
                (released := idle_release(serving, shed, idle_since, config.boot_s, now)):
            drain += released
            notes.append(f"released {len(released)} idle for {config.boot_s:g}s")
        elif pending == 0:
            notes.append(f"{shed} surplus kept until the queue is empty for {config.idle_s:g}s "
                         f"({config.idle_s - idle_for:.0f}s left)")
        else:
            notes.append(f"{shed} surplus kept while {pending} pending")

    planned = usd_now + sum(c.usd_per_hour for c in creates)
    actions = [f"+{len(creates)}" if creates else "", f"drain {len(drain)}" if drain else "",
               f"terminate {len(terminate)}" if terminate else ""]
    reason = f"pending {pending}: {wants}; target {target}, serving {len(serving)}"
    if observation.crash_loop is not None:
        notes.append(f"crash loop: creating stopped ({observation.crash_loop})")
    if caps_hit:
        reason += f"; capped by {', '.join(caps_hit)}"
    if any(actions):
        reason += "; " + ", ".join(a for a in actions if a)
    if notes:
        reason += "; " + "; ".join(notes)
    decision = replace(base, desired=desired, target=target, serving=len(serving), reason=reason,
                       bound_by=binding_cap(caps_hit), caps_hit=tuple(caps_hit),
                       create=tuple(creates), drain=tuple(drain), terminate=tuple(terminate),
                       usd_per_hour_planned=planned, failures=tuple(failures))
    return decision, new_memory


def account(policy: str, observation: Observation, memory: Memory, now: float) -> tuple[Decision, Memory]:
    """The spend accounting every policy shares: today's spend charged up to `now`, and a Decision that holds
    the pool as it is (the base each policy fills in). Charges the dearer of the last and the current price."""
    workers = observation.workers
    usd_now = sum(w.usd_per_hour for w in workers)
    day, spent = caps.accrue_spend(memory.day, memory.spent_today_usd, memory.accounted_at,
                                   max(memory.usd_per_hour, usd_now), now)
    new_memory = replace(memory, day=day, spent_today_usd=spent, accounted_at=now, usd_per_hour=usd_now)
    base = Decision(policy=policy, pending=observation.pending, desired=len(workers), target=len(workers),
                    current=len(workers), serving=len(workers), reason="", usd_per_hour=usd_now,
                    usd_per_hour_planned=usd_now, spent_today_usd=spent)
    return base, new_memory


def held(base: Decision, failures: list[str]) -> Decision:
    """A read failed: the size stays and nothing is done (never a failed read taken as zero)."""
    failed = "; ".join(failures) or "a read failed"
    return replace(base, reason=f"hold at {base.current}: {failed}", failures=tuple(failures), held=True)


def capped_target(desired: int, serving: int, spent_today_usd: float, crash_loop: str | None,
                  config: PolicyConfig, caps_hit: list[str]) -> tuple[int, bool]:
    """`desired` raised to the minimum and cut by the daily budget, the worker cap and an open crash-loop
    breaker (which stops creating but keeps the minimum and the workers already serving).
    Returns (target, over the daily budget); every cap that cut is appended to `caps_hit`."""
    target = max(desired, config.min_workers)
    over_budget = caps.budget_exhausted(spent_today_usd, config.daily_budget_usd)
    if over_budget and target > config.min_workers:
        caps_hit.append("daily_budget")
        target = config.min_workers
    if target > config.max_workers:
        caps_hit.append("max_workers")
        target = config.max_workers
    if crash_loop is not None and target > max(serving, config.min_workers):
        caps_hit.append("crash_loop")
        target = max(serving, config.min_workers)
    return target, over_budget


def binding_cap(caps_hit: list[str]) -> str | None:
    """The cap a decision reports as binding: an open crash-loop breaker first (nothing else matters while it
    is open), else the last cap applied (the tightest)."""
    if "crash_loop" in caps_hit:
        return "crash_loop"
    return caps_hit[-1] if caps_hit else None


def departures(workers: tuple[Worker, ...], config: PolicyConfig,
               now: float) -> tuple[list[str], list[str], set[str], list[str]]:
    """Workers on their way out whatever the target: stuck boots, silent, drained, exited, broken, orphans.

    Never a busy one: a worker whose Celery answer shows a chapter stays, whatever the provider says.
    Returns (terminate, drain, leaving, notes).
    """
    terminate: list[str] = []
    drain: list[str] = []
    leaving: set[str] = set()
    notes: list[str] = []
    for w in workers:
        if w.requested:
            continue
        if (w.terminating or w.exited) and not w.busy:
            terminate.append(w.name)
        elif w.error is not None and not w.busy:
            terminate.append(w.name)  # it stepped aside: its model cannot load
            notes.append(f"{w.name} cannot load its model: replaced")
        elif w.state == "booting" and not w.busy and now - w.created_at >= config.boot_timeout_s:
            terminate.append(w.name)
            notes.append(f"{w.name} not up after {config.boot_timeout_s:g}s: replaced")
        elif w.state == "silent" and not w.busy and \
                now - (w.last_seen_at or w.created_at) >= config.boot_timeout_s:
            terminate.append(w.name)
            notes.append(f"{w.name} silent for {config.boot_timeout_s:g}s: replaced")
        elif w.state == "draining":
            if w.consuming:
                drain.append(w.name)  # the cancel has not taken effect yet: send it again
            elif not w.busy:
                terminate.append(w.name)
            # else: still finishing its chapter; it no longer serves
        elif not w.owned and config.orphans == "terminate":
            if w.state == "booting":
                terminate.append(w.name)
            elif w.state in ("idle", "busy"):
                drain.append(w.name)  # a busy orphan finishes its chapter first
            else:
                continue
            notes.append(f"orphan {w.name} removed")
        else:
            continue
        leaving.add(w.name)
    return terminate, drain, leaving, notes


def plan_creates(wanted: int, counted: int, usd_now: float, offers: tuple[GpuOffer, ...],
                 config: PolicyConfig, caps_hit: list[str], failures: list[str]) -> list[CreateAction]:
    """Up to `wanted` creates within the worker count, the step and the USD/hour cap (each offer's own price,
    in preference order); every cap that cut the plan is appended to `caps_hit`."""
    room = caps.worker_headroom(counted, config.max_workers)
    if wanted > room:
        caps_hit.append("max_workers")
        wanted = room
    if wanted > config.max_step:
        caps_hit.append("max_step")
        wanted = config.max_step
    creates: list[CreateAction] = []
    committed = usd_now
    for _ in range(wanted):
        fitting = [o for o in offers if caps.fits_usd_cap(committed, o.usd_per_hour, config.max_usd_per_hour)]
        if not fitting:
            if offers:
                caps_hit.append("max_usd_per_hour")
            else:
                failures.append("no GPU type can be created now (all backing off or unpriced)")
            break
        choice = fitting[0]
        creates.append(CreateAction(choice.gpu_type, choice.usd_per_hour, tuple(fitting[1:])))
        committed += choice.usd_per_hour
    return creates


def plan_removals(serving: tuple[Worker, ...], target: int, forced: bool,
                   config: PolicyConfig) -> tuple[list[str], list[str]]:
    """Who goes: never-registered boots first (nothing runs there), then idle workers, dearest first.
    Busy workers only when a cap or the budget forces it, and then through a drain (the chapter ends first).
    """
    unregistered = sorted((w for w in serving if w.state == "booting" and not w.requested),
                          key=lambda w: -w.created_at)
    idle = sorted((w for w in serving if w.state == "idle"), key=lambda w: (-w.usd_per_hour, -w.created_at))
    busy = sorted((w for w in serving if w.state == "busy"), key=lambda w: (-w.usd_per_hour, -w.created_at))
    candidates = unregistered + idle + (busy if forced else [])
    remaining = list(serving)
    terminate: list[str] = []
    drain: list[str] = []
    for w in candidates:
        usd_left = sum(x.usd_per_hour for x in remaining)
        if len(remaining) <= target and not caps.over_usd_cap(usd_left, config.max_usd_per_hour):
            break
        (terminate if w.state == "booting" else drain).append(w.name)
        remaining.remove(w)
    return terminate, drain


__all__ = [
    "CAPS", "TABLE_BANDS", "CreateAction", "Decision", "GpuOffer", "Memory", "Observation", "PolicyConfig",
    "Worker", "account", "backlog_workers", "binding_cap", "capped_target", "decide", "departures", "held",
    "idle_release", "plan_creates", "plan_removals", "table_workers",
]
