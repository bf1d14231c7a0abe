"""One tick of the execution core, the same for the live scaler and the simulator: read -> reconcile ->
decide -> write the bookkeeping -> execute.

Reading is only reading: the provider's listing, lookups by id and prices (concurrently, under one deadline),
Celery, the broker and the workers' model reports. Every state change after it is an explicit step: the
records `reconcile` changed or confirmed gone, the crash-loop breaker, then each action of `execute`, then
the policy's memory. The world (`scaler.world.World`) is all the core touches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from scaler import breaker as breakers
from scaler.errors import LockLost, ObservationError, ProviderError
from scaler.execute import Limits, execute
from scaler.health import WorkerHealth
from scaler.policy import Decision, GpuOffer, Memory, Observation, PolicyConfig
from scaler.providers.base import Instance, Lookup, name_from_nodename
from scaler.reconcile import Reads, Reconciled, lookups_needed, reconcile
from scaler.records import Executed, Headroom, Health, ObservationView, ReconcileView, TickRecord
from scaler.state import Durable
from scaler.workers import CeleryWorker, in_flight_from
from scaler.world import World

#: The policy as the core calls it: the live tick passes `decide` with its config, the simulator its peers.
Policy = Callable[[Observation, Memory, float], tuple[Decision, Memory]]


@dataclass(frozen=True)
class CoreOptions:
    """What the core enforces and how long it waits: from the settings (live) or the simulation."""

    config: PolicyConfig
    deployment: str
    capacity_backoff_s: float = 300.0
    provider_deadline_s: float = 20.0  # the longest wait for the prices and lookups, all of them together
    crash_loop_workers: int = 3  # K workers in a row that fail to become ready open the breaker
    crash_loop_cooloff_s: float = 1800.0

    @property
    def limits(self) -> Limits:
        return Limits(self.config.max_workers, self.config.max_usd_per_hour, self.config.min_workers,
                      self.capacity_backoff_s)


@dataclass(frozen=True)
class _Read:
    reads: Reads
    waiting: int | None
    in_flight: int | None
    queued_chars: int | None
    oldest_waiting_s: float | None
    offers: tuple[GpuOffer, ...]
    looked_up: tuple[str, ...]
    failures: tuple[str, ...]
    failed_sources: tuple[str, ...]
    provider_errors: tuple[str, ...]


def run_tick(world: World, policy: Policy, options: CoreOptions, dry_run: bool = False) -> TickRecord:
    """One tick under a lock the caller holds. Raises only for a failing state store (the caller records it)."""
    now = world.clock()
    durable = world.store.load()
    read = read_world(world, durable, options, now)
    seen = reconcile(durable.workers, read.reads, options.config, options.deployment, now)
    breaker = breakers.after_outcomes(durable.breaker, len(seen.ready), [e for _, e in seen.failed],
                                      options.crash_loop_workers, options.crash_loop_cooloff_s, now)
    crash_loop = breaker.is_open(now)
    observation = Observation(
        waiting=read.waiting, in_flight=read.in_flight, workers=seen.workers, offers=read.offers,
        queued_chars=read.queued_chars, workers_known=seen.complete, failures=read.failures + seen.failures,
        crash_loop=(breaker.last_error or "workers fail to start") if crash_loop else None,
        oldest_waiting_s=read.oldest_waiting_s)
    decision, memory = policy(observation, durable.memory, now)
    record = TickRecord(
        at=datetime.fromtimestamp(now, tz=UTC).isoformat(), ts=now, provider=world.provider.name, dry_run=dry_run,
        outcome="held" if decision.held else "dry_run" if dry_run else "ok",
        observation=ObservationView.of(observation, seen.unmanaged, read.failed_sources), decision=decision,
        reconcile=ReconcileView(adopted=seen.adopted, forgotten=seen.forgotten, looked_up=read.looked_up,
                                omitted=seen.omitted, unresolved=seen.unresolved, foreign=seen.foreign),
        health=Health(healthy=sum(1 for w in seen.workers if w.owned and w.state in ("idle", "busy")
                                  and w.error is None),
                      failed_in_a_row=breaker.failed_in_a_row, last_error=breaker.last_error, crash_loop=crash_loop,
                      tripped_at=breaker.tripped_at, resumes_at=breaker.resumes_at))
    try:
        write_bookkeeping(world, seen, durable, breaker, read.reads.health)
        executed = Executed(provider_errors=read.provider_errors)
        if not (dry_run or decision.held):
            done = execute(decision, seen, world, options.limits, durable.backoff, crash_loop, now)
            executed = Executed(done.created, done.drained, done.terminated, done.failures,
                                read.provider_errors + done.provider_errors)
        world.keep()
    except LockLost as exc:  # another tick owns the state now: write nothing more
        return replace(record, outcome="lock_lost", reason=str(exc))
    world.store.save_memory(memory)
    return replace(record, executed=executed, headroom=headroom(options.config, decision, executed))


def headroom(config: PolicyConfig, decision: Decision, executed: Executed) -> Headroom:
    """How far the pool is under each cap once this tick's creates are counted (the leaving ones still bill)."""
    workers = decision.current + len(executed.created)
    usd = decision.usd_per_hour + sum(c.usd_per_hour for c in executed.created)
    budget = None if config.daily_budget_usd is None else round(config.daily_budget_usd - decision.spent_today_usd, 6)
    return Headroom(max_workers=config.max_workers - workers,
                    max_usd_per_hour=round(config.max_usd_per_hour - usd, 6), daily_budget_usd=budget)


def read_world(world: World, durable: Durable, options: CoreOptions, now: float) -> _Read:
    """Every read of one tick. Never raises for a read: a failed one is None and named in the failures."""
    failures: list[str] = []
    failed_sources: list[str] = []
    provider_errors: list[str] = []
    listing: list[Instance] | None
    try:
        listing = world.provider.list_instances()
    except ProviderError as exc:
        listing = None
        failures.append(f"provider list: {exc}")
        failed_sources.append("provider")
        provider_errors.append("list")
    celery: dict[str, CeleryWorker] | None
    try:
        celery = world.cluster.workers()
    except ObservationError as exc:
        celery = None
        failures.append(str(exc))
        failed_sources.append("celery")
    waiting = in_flight = queued_chars = None
    oldest_waiting_s = None
    try:
        depth = world.cluster.depth(with_chars=options.config.policy == "backlog")
        waiting, queued_chars = depth.waiting, depth.queued_chars
        in_flight = depth.in_flight if depth.in_flight is not None else (
            in_flight_from(celery) if celery is not None else None)
        if depth.oldest_queued_at is not None:
            oldest_waiting_s = max(0.0, now - depth.oldest_queued_at)
    except ObservationError as exc:
        failures.append(str(exc))
        failed_sources.append("broker")
    health: dict[str, WorkerHealth] = {}
    try:
        health = world.cluster.health()
    except ObservationError as exc:  # the reports only add errors: without them nothing is mistaken for ready
        failures.append(str(exc))

    offers: list[GpuOffer] = []
    lookups: dict[str, Lookup] = {}
    looked_up: list[str] = []
    if listing is not None:
        ids = lookups_needed(durable.workers, listing, options.deployment)
        types = [t for t in world.provider.gpu_types() if durable.backoff.get(t, 0.0) <= now]
        prices, lookups = world.provider.read_many(types, ids, options.provider_deadline_s)
        looked_up = ids
        for gpu_type in types:
            price = prices[gpu_type]
            if isinstance(price, ProviderError):
                failures.append(f"price of {gpu_type}: {price}")
                provider_errors.append("price")
            else:
                offers.append(GpuOffer(gpu_type, price))
        provider_errors += ["lookup" for answer in lookups.values() if isinstance(answer, ProviderError)]
    reads = Reads(listing=tuple(listing) if listing is not None else None, lookups=lookups, celery=celery,
                  health=health)
    return _Read(reads, waiting, in_flight, queued_chars, oldest_waiting_s, tuple(offers), tuple(looked_up),
                 tuple(failures), tuple(failed_sources), tuple(provider_errors))


def write_bookkeeping(world: World, seen: Reconciled, durable: Durable, breaker: breakers.Breaker,
                      health: Mapping[str, WorkerHealth] | None = None) -> None:
    """The explicit state changes of reconcile: changed records, confirmed-gone records (and their model
    reports), the breaker."""
    gone = [nodename for nodename in health or {} if name_from_nodename(nodename) in seen.forgotten]
    if not (seen.changed or seen.forgotten or gone or breaker != durable.breaker):
        return
    world.keep()
    world.store.put_workers([seen.records[name] for name in seen.changed])
    for name in seen.forgotten:
        world.store.delete_worker(name)
    if gone:
        world.cluster.forget_health(gone)
    if breaker != durable.breaker:
        world.store.save_breaker(breaker)
