"""`execute`: carry out one Decision through the world: terminate, then drain, then create.

Each create is checked again with what is really committed (a fallback type may cost more than the planned
one) and reserved in the state before the call, so a lost answer still counts against the caps. No busy
worker is ever terminated: its Celery answer stops the terminate whatever the decision says. An open
crash-loop breaker refuses creates beyond the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scaler import caps
from scaler.errors import CapacityError, ProviderError
from scaler.policy import Decision, GpuOffer
from scaler.reconcile import Reconciled
from scaler.records import Created, Executed
from scaler.state import WorkerRecord
from scaler.world import World


@dataclass(frozen=True)
class Limits:
    """What the executor enforces whatever the policy planned: the caps, the floor and the backoff."""

    max_workers: int
    max_usd_per_hour: float
    min_workers: int = 0
    capacity_backoff_s: float = 300.0


@dataclass
class _Done:
    created: list[Created] = field(default_factory=list)
    drained: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    provider_errors: list[str] = field(default_factory=list)

    def result(self) -> Executed:
        return Executed(tuple(self.created), tuple(self.drained), tuple(self.terminated), tuple(self.failures),
                        tuple(self.provider_errors))


def execute(decision: Decision, seen: Reconciled, world: World, limits: Limits, backoff: dict[str, float],
            crash_loop: bool, now: float) -> Executed:
    """Terminate, drain, create. Raises LockLost (from `world.keep`) when another tick owns the state now."""
    done = _Done()
    _terminate(decision, seen, world, now, done)
    _drain(decision, seen, world, now, done)
    _create(decision, world, limits, dict(backoff), crash_loop, now, done)
    return done.result()


def _terminate(decision: Decision, seen: Reconciled, world: World, now: float, done: _Done) -> None:
    workers = {w.name: w for w in seen.workers}
    orphans = seen.orphans or {}
    for name in decision.terminate:
        worker = workers.get(name)
        record = seen.records.get(name) or orphans.get(name)
        if worker is None or record is None or record.instance_id is None:
            done.failures.append(f"terminate {name}: not a worker of ours with an id")
            continue
        if worker.busy:
            done.failures.append(f"terminate {name} refused: it is busy (only a drain may stop it)")
            continue
        world.keep()
        if name in seen.records:
            record.status = "terminating"
            world.store.put_worker(record)
        try:
            world.provider.terminate(record.instance_id)
        except ProviderError as exc:
            done.failures.append(f"terminate {name}: {exc}")
            done.provider_errors.append("terminate")
            continue
        if name in seen.records:
            record.terminated_at = now
            world.store.put_worker(record)
        done.terminated.append(name)


def _drain(decision: Decision, seen: Reconciled, world: World, now: float, done: _Done) -> None:
    nodenames = seen.nodenames or {}
    for name in decision.drain:
        world.keep()
        record = seen.records.get(name)
        if record is not None:
            record.status = "draining"
            record.drain_started_at = record.drain_started_at or now
            world.store.put_worker(record)
        nodename = nodenames.get(name)
        if nodename is None:
            done.failures.append(f"drain {name}: its worker does not answer")
            continue
        try:
            acknowledged = world.cluster.drain(nodename)
        except Exception as exc:  # a broker error: the next tick sends the cancel again
            done.failures.append(f"drain {name}: {type(exc).__name__}: {exc}")
            continue
        if not acknowledged:
            done.failures.append(f"drain {name}: no reply to cancel_consumer (sent again next tick)")
        done.drained.append(name)


def _create(decision: Decision, world: World, limits: Limits, backoff: dict[str, float], crash_loop: bool,
            now: float, done: _Done) -> None:
    committed_usd = decision.usd_per_hour
    counted = decision.current
    serving = decision.serving
    for action in decision.create:
        if crash_loop and serving >= limits.min_workers:
            done.failures.append("create refused: crash loop (creating stopped beyond the minimum)")
            return
        created = False
        for offer in (GpuOffer(action.gpu_type, action.usd_per_hour), *action.fallbacks):
            if backoff.get(offer.gpu_type, 0.0) > now:
                continue
            if counted >= limits.max_workers:
                done.failures.append("create refused: max_workers")
                return
            if not caps.fits_usd_cap(committed_usd, offer.usd_per_hour, limits.max_usd_per_hour):
                done.failures.append(f"create of {offer.gpu_type} refused: max_usd_per_hour")
                continue
            world.keep()
            name = world.new_name()
            record = WorkerRecord(name=name, status="requested", gpu_type=offer.gpu_type,
                                  usd_per_hour=offer.usd_per_hour, created_at=now)
            # Reserved before the call: if the answer is lost the worker still counts against the caps.
            world.store.put_worker(record)
            try:
                instance = world.provider.create(name, offer.gpu_type)
            except CapacityError as exc:
                backoff[offer.gpu_type] = now + limits.capacity_backoff_s
                world.store.set_backoff(offer.gpu_type, backoff[offer.gpu_type])
                world.store.delete_worker(name)
                done.failures.append(f"create {offer.gpu_type}: {exc} (backing off {limits.capacity_backoff_s:g}s)")
                done.provider_errors.append("create")
                continue
            except ProviderError as exc:
                if exc.definite:
                    world.store.delete_worker(name)
                done.failures.append(f"create {offer.gpu_type}: {exc}"
                                     + ("" if exc.definite else " (outcome unknown: reserved until seen)"))
                done.provider_errors.append("create")
                return  # stop creating this tick
            record.instance_id = instance.id
            world.store.put_worker(record)
            committed_usd += offer.usd_per_hour
            counted += 1
            serving += 1
            done.created.append(Created(name, instance.id, offer.gpu_type, offer.usd_per_hour))
            created = True
            break
        if not created:
            return  # every type refused or backing off: the rest would fail the same way
