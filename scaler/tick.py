"""One tick: observe -> decide -> act -> record, single-flight under a Redis lock that expires.

`Scaler.tick()` is what the beat task and `audiobook scaler tick` run. Everything it touches is a field,
so tests build one with a test broker, a fake provider API and a short clock.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery
from redis.lock import Lock

from scaler import caps, metrics
from scaler.drain import start_drain
from scaler.errors import CapacityError, LockLost, ObservationError, ProviderError, ScalerError
from scaler.observe import DepthReader, depth_reader
from scaler.policy import Decision, GpuOffer, Observation, PolicyConfig, Worker, decide
from scaler.providers import Provider, build_provider
from scaler.providers.base import Instance, name_from_nodename
from scaler.redis_client import is_redis_url, redis_client
from scaler.state import Durable, StateStore, WorkerRecord
from scaler.workers import CeleryWorker, in_flight_from, inspect_workers
from settings import QUEUE_GPU

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger("scaler.decisions")


def policy_config(s: Settings) -> PolicyConfig:
    return PolicyConfig(
        policy=s.scaler_policy, min_workers=s.scaler_min_workers, max_workers=s.scaler_max_workers,
        max_usd_per_hour=s.scaler_max_usd_per_hour, daily_budget_usd=s.scaler_daily_budget_usd,
        idle_s=s.scaler_idle_s, max_step=s.scaler_max_step, boot_timeout_s=s.scaler_boot_timeout_s,
        boot_s=s.scaler_boot_s, target_drain_s=s.scaler_target_drain_s, seconds_per_char=s.scaler_seconds_per_char,
        orphans=s.scaler_orphans)


def state_store(app: Celery, s: Settings) -> StateStore:
    """The scaler's Redis state: on the broker if it is Redis, else on the result backend."""
    broker_url = str(app.conf.broker_url or s.broker_url.get_secret_value())
    candidates = ((broker_url, app.conf.broker_transport_options),
                  (s.backend_url, app.conf.result_backend_transport_options))
    found = next(((url, options) for url, options in candidates if is_redis_url(url)), None)
    if found is None:
        raise ScalerError("the scaler keeps its state in Redis: CELERY_BROKER_URL or CELERY_RESULT_BACKEND "
                          "must be a redis://, rediss:// or sentinel:// URL")
    client = redis_client(found[0], found[1], socket_timeout=10, socket_connect_timeout=5)
    return StateStore(client, s.scaler_name_prefix, key_prefix=s.broker_keyprefix)


@dataclass
class Seen:
    """What observe() found, plus the bookkeeping act() and the record need."""

    observation: Observation
    records: dict[str, WorkerRecord]  # durable records after reconciling with the listing
    orphans: dict[str, WorkerRecord] = field(default_factory=dict)  # marked, unknown, not adopted
    nodenames: dict[str, str] = field(default_factory=dict)  # worker name -> Celery nodename
    forgotten: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)  # gpu-long consumers the scaler does not own
    failed_sources: list[str] = field(default_factory=list)
    provider_errors: list[str] = field(default_factory=list)


@dataclass
class Scaler:
    """Everything one tick needs."""

    app: Celery
    provider: Provider
    depth: DepthReader
    store: StateStore
    config: PolicyConfig
    name_prefix: str = "audiobook-gpu"
    queue: str = QUEUE_GPU
    dry_run: bool = False
    capacity_backoff_s: float = 300.0
    inspect_timeout_s: float = 1.0
    lock_ttl_s: float = 90.0
    history: int = 200
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(cls, app: Celery, settings: Settings | None = None,
                      provider: Provider | None = None) -> Scaler:
        from settings import get_settings

        s = settings or get_settings()
        transport = dict(app.conf.broker_transport_options or {})
        broker_url = str(app.conf.broker_url or s.broker_url.get_secret_value())
        return cls(
            app=app, provider=provider or build_provider(s), depth=depth_reader(broker_url, QUEUE_GPU, transport),
            store=state_store(app, s), config=policy_config(s), name_prefix=s.scaler_name_prefix,
            dry_run=s.scaler_dry_run, capacity_backoff_s=s.scaler_capacity_backoff_s, history=s.scaler_history,
            lock_ttl_s=max(60.0, 3 * s.scaler_interval_s, 3 * s.scaler_provider_timeout_s))

    # --- the tick ---------------------------------------------------------------------------------------
    def tick(self, dry_run: bool | None = None) -> dict[str, Any]:
        """Run one tick and return its decision record (also logged as one JSON line and kept in Redis)."""
        dry_run = self.dry_run if dry_run is None else dry_run
        started = time.monotonic()
        now = self.clock()
        record: dict[str, Any] = {"at": datetime.fromtimestamp(now, tz=UTC).isoformat(), "ts": now,
                                  "provider": self.provider.name, "dry_run": dry_run}
        lock = self.store.lock(self.lock_ttl_s)
        try:
            if not lock.acquire(blocking=False):
                record |= {"outcome": "skipped", "reason": "another tick holds the lock"}
                return self._emit(record, started)
        except redis.RedisError as exc:
            record |= {"outcome": "error", "reason": f"state redis: {exc}"}
            return self._emit(record, started)
        try:
            record |= self._locked_tick(lock, now, dry_run)
            if record["outcome"] in ("ok", "held", "dry_run"):
                record["duration_s"] = round(time.monotonic() - started, 3)
                self.store.push_record(record, self.history)
        except redis.RedisError as exc:
            record |= {"outcome": "error", "reason": f"state redis: {exc}"}
        finally:
            try:
                lock.release()
            except (redis.exceptions.LockError, redis.RedisError):
                pass  # expired or unreachable: it frees itself at its TTL
        return self._emit(record, started)

    def _locked_tick(self, lock: Lock, now: float, dry_run: bool) -> dict[str, Any]:
        durable = self.store.load()
        seen = self.observe(durable, now)
        decision, memory = decide(seen.observation, self.config, durable.memory, now)
        record: dict[str, Any] = {
            "observation": self._observation_record(seen),
            "decision": decision.to_dict(),
            "reconcile": {"adopted": seen.adopted, "forgotten": seen.forgotten},
        }
        try:
            executed = self.act(decision, seen, durable, lock, now, dry_run)
        except LockLost as exc:  # another tick owns the state now: write nothing more
            return record | {"outcome": "lock_lost", "reason": str(exc)}
        self.store.save(seen.records, seen.forgotten, memory)
        outcome = "held" if decision.held else "dry_run" if dry_run else "ok"
        return record | {"outcome": outcome, "executed": executed}

    # --- observe ----------------------------------------------------------------------------------------
    def observe(self, durable: Durable, now: float) -> Seen:
        """Read the broker, Celery and the provider; join them into policy Workers. Never raises on a read."""
        failures: list[str] = []
        failed_sources: list[str] = []
        provider_errors: list[str] = []
        records = {name: replace(rec) for name, rec in durable.workers.items()}

        instances: list[Instance] | None
        try:
            instances = self.provider.list_instances()
        except ProviderError as exc:
            instances = None
            failures.append(f"provider list: {exc}")
            provider_errors.append("list")
        celery: dict[str, CeleryWorker] = {}
        celery_ok = True
        try:
            celery = inspect_workers(self.app, self.queue, self.inspect_timeout_s)
        except ObservationError as exc:
            celery_ok = False
            failures.append(str(exc))
            failed_sources.append("celery")
        waiting = in_flight = queued_chars = None
        try:
            depth = self.depth.read(with_chars=self.config.policy == "backlog")
            waiting, queued_chars = depth.waiting, depth.queued_chars
            in_flight = depth.in_flight if depth.in_flight is not None else (
                in_flight_from(celery) if celery_ok else None)
        except ObservationError as exc:
            failures.append(str(exc))
            failed_sources.append("broker")

        offers: list[GpuOffer] = []
        if instances is not None:
            for gpu_type in self.provider.gpu_types():
                if durable.backoff.get(gpu_type, 0.0) > now:
                    continue
                try:
                    offers.append(GpuOffer(gpu_type, self.provider.price(gpu_type)))
                except ProviderError as exc:
                    failures.append(f"price of {gpu_type}: {exc}")
                    provider_errors.append("price")

        by_name: dict[str, CeleryWorker] = {}
        nodenames: dict[str, str] = {}
        for nodename, info in celery.items():
            name = name_from_nodename(nodename)
            if name is not None:
                by_name[name] = info
                nodenames[name] = nodename

        seen = Seen(observation=Observation(waiting=None, in_flight=None), records=records, nodenames=nodenames,
                    failed_sources=failed_sources, provider_errors=provider_errors)
        workers: list[Worker] = []
        if instances is None:
            # Held: the policy needs only the count and the price of what the scaler knows.
            workers = [Worker(name=r.name, state="booting", usd_per_hour=r.usd_per_hour, created_at=r.created_at,
                              gpu_type=r.gpu_type, requested=True, last_seen_at=r.last_seen_at)
                       for r in records.values()]
        else:
            listed = {inst.name: inst for inst in instances}
            for inst in instances:
                record = records.get(inst.name)
                owned = True
                if record is None:  # marked but unknown: an orphan
                    record = WorkerRecord(name=inst.name, status="active", gpu_type=inst.gpu_type,
                                          usd_per_hour=inst.usd_per_hour, created_at=inst.created_at or now,
                                          adopted=True)
                    if self.config.orphans == "adopt":
                        records[inst.name] = record
                        seen.adopted.append(inst.name)
                    else:
                        seen.orphans[inst.name] = record
                        owned = False
                record.instance_id = inst.id
                record.listed_at = record.listed_at or now
                if record.status == "requested":
                    record.status = "active"
                record.usd_per_hour = max(record.usd_per_hour, inst.usd_per_hour)
                info = by_name.get(inst.name)
                if info is not None:
                    record.last_seen_at = now
                workers.append(_worker(inst, record, info, owned))
            for name, record in list(records.items()):
                if name in listed:
                    continue
                if record.listed_at is None and now - record.created_at < self.config.boot_timeout_s:
                    # sent, not listed yet (or the answer was lost): it counts against the caps
                    workers.append(Worker(name=name, state="booting", usd_per_hour=record.usd_per_hour,
                                          created_at=record.created_at, gpu_type=record.gpu_type, requested=True))
                else:
                    seen.forgotten.append(name)
                    del records[name]
            seen.unmanaged = sorted(n for n, info in celery.items()
                                    if info.consuming and name_from_nodename(n) not in listed)
        seen.observation = Observation(
            waiting=waiting, in_flight=in_flight, workers=tuple(workers), offers=tuple(offers),
            queued_chars=queued_chars, workers_known=instances is not None and celery_ok,
            failures=tuple(failures))
        return seen

    # --- act --------------------------------------------------------------------------------------------
    def act(self, decision: Decision, seen: Seen, durable: Durable, lock: Lock, now: float,
            dry_run: bool) -> dict[str, Any]:
        """Terminate, then drain, then create; each create re-checks the caps with what is really committed."""
        executed: dict[str, Any] = {"created": [], "drained": [], "terminated": [], "failures": [],
                                    "provider_errors": list(seen.provider_errors)}
        if dry_run or decision.held:
            return executed
        failures: list[str] = executed["failures"]
        records = seen.records

        for name in decision.terminate:
            self.store.keep(lock)
            record = records.get(name) or seen.orphans.get(name)
            if record is None or record.instance_id is None:
                failures.append(f"terminate {name}: no instance id")
                continue
            if name in records:
                record.status = "terminating"
                self.store.put_worker(record)
            try:
                self.provider.terminate(record.instance_id)
            except ProviderError as exc:
                failures.append(f"terminate {name}: {exc}")
                executed["provider_errors"].append("terminate")
                continue
            executed["terminated"].append(name)

        for name in decision.drain:
            self.store.keep(lock)
            record = records.get(name)
            if record is not None:
                record.status = "draining"
                record.drain_started_at = record.drain_started_at or now
                self.store.put_worker(record)
            nodename = seen.nodenames.get(name)
            if nodename is None:
                failures.append(f"drain {name}: its worker does not answer")
                continue
            try:
                acknowledged = start_drain(self.app, nodename, self.queue, self.inspect_timeout_s)
            except Exception as exc:  # a broker error: the next tick sends the cancel again
                failures.append(f"drain {name}: {type(exc).__name__}: {exc}")
                continue
            if not acknowledged:
                failures.append(f"drain {name}: no reply to cancel_consumer (sent again next tick)")
            executed["drained"].append(name)

        self._create(decision, seen, durable, lock, now, executed)
        return executed

    def _create(self, decision: Decision, seen: Seen, durable: Durable, lock: Lock, now: float,
                executed: dict[str, Any]) -> None:
        failures: list[str] = executed["failures"]
        committed_usd = decision.usd_per_hour
        counted = decision.current
        backoff = dict(durable.backoff)
        for action in decision.create:
            created = False
            for offer in (GpuOffer(action.gpu_type, action.usd_per_hour), *action.fallbacks):
                if backoff.get(offer.gpu_type, 0.0) > now:
                    continue
                if counted >= self.config.max_workers:
                    failures.append("create refused: max_workers")
                    return
                if not caps.fits_usd_cap(committed_usd, offer.usd_per_hour, self.config.max_usd_per_hour):
                    failures.append(f"create of {offer.gpu_type} refused: max_usd_per_hour")
                    continue
                self.store.keep(lock)
                name = f"{self.name_prefix}-{secrets.token_hex(4)}"
                record = WorkerRecord(name=name, status="requested", gpu_type=offer.gpu_type,
                                      usd_per_hour=offer.usd_per_hour, created_at=now)
                # Reserved before the call: if the answer is lost the pod still counts against the caps.
                self.store.put_worker(record)
                seen.records[name] = record
                try:
                    instance = self.provider.create(name, offer.gpu_type)
                except CapacityError as exc:
                    backoff[offer.gpu_type] = now + self.capacity_backoff_s
                    self.store.set_backoff(offer.gpu_type, backoff[offer.gpu_type])
                    self._release(name, seen)
                    failures.append(f"create {offer.gpu_type}: {exc} (backing off "
                                    f"{self.capacity_backoff_s:g}s)")
                    executed["provider_errors"].append("create")
                    continue
                except ProviderError as exc:
                    if exc.definite:
                        self._release(name, seen)
                    failures.append(f"create {offer.gpu_type}: {exc}"
                                    + ("" if exc.definite else " (outcome unknown: reserved until seen)"))
                    executed["provider_errors"].append("create")
                    return  # stop creating this tick
                record.instance_id = instance.id
                self.store.put_worker(record)
                committed_usd += offer.usd_per_hour
                counted += 1
                executed["created"].append({"name": name, "id": instance.id, "gpu_type": offer.gpu_type,
                                            "usd_per_hour": offer.usd_per_hour})
                created = True
                break
            if not created:
                return  # every type refused or backing off: the rest would fail the same way

    def _release(self, name: str, seen: Seen) -> None:
        self.store.delete_worker(name)
        seen.records.pop(name, None)

    # --- record ------------------------------------------------------------------------------------------
    @staticmethod
    def _observation_record(seen: Seen) -> dict[str, Any]:
        obs = seen.observation
        return {
            "waiting": obs.waiting, "in_flight": obs.in_flight, "pending": obs.pending,
            "queued_chars": obs.queued_chars, "workers_known": obs.workers_known,
            "states": dict(Counter(w.state for w in obs.workers)),
            "workers": [{"name": w.name, "state": w.state, "gpu_type": w.gpu_type, "usd_per_hour": w.usd_per_hour,
                         "busy": w.busy, "owned": w.owned, "requested": w.requested} for w in obs.workers],
            "offers": [{"gpu_type": o.gpu_type, "usd_per_hour": o.usd_per_hour} for o in obs.offers],
            "unmanaged": seen.unmanaged, "failed_sources": seen.failed_sources,
        }

    def _emit(self, record: dict[str, Any], started: float) -> dict[str, Any]:
        record["duration_s"] = round(time.monotonic() - started, 3)
        log.info("%s", json.dumps(record, sort_keys=True))
        metrics.observe_record(record)
        return record


def _worker(inst: Instance, record: WorkerRecord, info: CeleryWorker | None, owned: bool) -> Worker:
    """A listed instance joined with its Celery worker (if it answers) into the policy's view."""
    if inst.status != "running":
        state = "booting"
    elif info is None:
        state = "booting" if record.last_seen_at is None else "silent"
    elif record.status == "draining" or not info.consuming:
        state = "draining"
    elif info.busy:
        state = "busy"
    else:
        state = "idle"
    return Worker(
        name=inst.name, state=state, usd_per_hour=record.usd_per_hour,  # type: ignore[arg-type]
        created_at=record.created_at, gpu_type=record.gpu_type, busy=info.busy if info else False,
        consuming=info.consuming if info else record.status != "draining", owned=owned,
        exited=inst.status == "exited", terminating=record.status == "terminating",
        last_seen_at=record.last_seen_at)
