"""The live tick: the execution core (`scaler.core`) over RunPod or local processes, Celery and Redis,
single-flight under a Redis lock that expires.

`Scaler.tick()` is what the beat task and `audiobook scaler tick` run. It renews the local workers' lease,
takes the lock, runs one core tick, keeps the record and the counters in Redis and logs it as one JSON line.
Everything it touches is a field, so tests build one with a test broker and a fake provider API.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import redis
from celery import Celery
from redis.lock import Lock

from scaler.cluster import CeleryCluster
from scaler.core import CoreOptions, run_tick
from scaler.health import health_key
from scaler.observe import DepthReader, depth_reader
from scaler.policy import Decision, Memory, Observation, PolicyConfig, decide
from scaler.providers import Provider, build_provider
from scaler.records import TickRecord
from scaler.state import StateStore, state_client
from scaler.world import World
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
    return StateStore(state_client(app, s), s.scaler_name_prefix, key_prefix=s.broker_keyprefix)


@dataclass
class Scaler:
    """Everything one live tick needs."""

    app: Celery
    provider: Provider
    depth: DepthReader
    store: StateStore
    config: PolicyConfig
    name_prefix: str = "audiobook-gpu"
    deployment: str = "default"
    queue: str = QUEUE_GPU
    dry_run: bool = False
    capacity_backoff_s: float = 300.0
    provider_timeout_s: float = 20.0
    inspect_timeout_s: float = 1.0
    lock_ttl_s: float = 90.0
    lease_s: float = 120.0
    crash_loop_workers: int = 3
    crash_loop_cooloff_s: float = 1800.0
    health_key: str = health_key()
    history: int = 200
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(cls, app: Celery, settings: Settings | None = None,
                      provider: Provider | None = None) -> Scaler:
        from settings import get_settings

        s = settings or get_settings()
        transport = dict(app.conf.broker_transport_options or {})
        broker_url = str(app.conf.broker_url or s.broker_url.get_secret_value())
        store = state_store(app, s)
        return cls(
            app=app, provider=provider or build_provider(s, lease_key=store.key("lease")),
            depth=depth_reader(broker_url, QUEUE_GPU, transport, s.lease_s), store=store, config=policy_config(s),
            name_prefix=s.scaler_name_prefix, deployment=s.deployment_id, dry_run=s.scaler_dry_run,
            capacity_backoff_s=s.scaler_capacity_backoff_s, provider_timeout_s=s.scaler_provider_timeout_s,
            history=s.scaler_history, lease_s=s.scaler_local_lease_s, crash_loop_workers=s.scaler_crash_loop_workers,
            crash_loop_cooloff_s=s.scaler_crash_loop_cooloff_s, health_key=health_key(s.broker_keyprefix),
            lock_ttl_s=max(60.0, 3 * s.scaler_interval_s, 3 * s.scaler_provider_timeout_s))

    def options(self) -> CoreOptions:
        return CoreOptions(config=self.config, deployment=self.deployment, capacity_backoff_s=self.capacity_backoff_s,
                           provider_deadline_s=self.provider_timeout_s, crash_loop_workers=self.crash_loop_workers,
                           crash_loop_cooloff_s=self.crash_loop_cooloff_s)

    def world(self, lock: Lock) -> World:
        cluster = CeleryCluster(self.app, self.queue, self.depth, self.store.client, self.health_key,
                                self.inspect_timeout_s)
        return World(provider=self.provider, cluster=cluster, store=self.store, clock=self.clock,
                     new_name=lambda: f"{self.name_prefix}-{secrets.token_hex(4)}",
                     keep=lambda: self.store.keep(lock))

    def policy(self, observation: Observation, memory: Memory, now: float) -> tuple[Decision, Memory]:
        return decide(observation, self.config, memory, now)

    # --- the tick ---------------------------------------------------------------------------------------
    def tick(self, dry_run: bool | None = None) -> TickRecord:
        """Run one tick and return its record (also logged as one JSON line and kept in Redis)."""
        dry_run = self.dry_run if dry_run is None else dry_run
        started = time.monotonic()
        now = self.clock()
        record = TickRecord(at=datetime.fromtimestamp(now, tz=UTC).isoformat(), ts=now, provider=self.provider.name,
                            dry_run=dry_run, outcome="")
        lock = self.store.lock(self.lock_ttl_s)
        try:
            self.store.renew_lease(now, self.lease_s)  # the control plane is alive, whoever holds the lock
            if not lock.acquire(blocking=False):
                return self._emit(replace(record, outcome="skipped", reason="another tick holds the lock"), started)
        except redis.RedisError as exc:
            return self._emit(replace(record, outcome="error", reason=f"state redis: {exc}"), started)
        try:
            record = run_tick(self.world(lock), self.policy, self.options(), dry_run)
            if record.outcome in ("ok", "held", "dry_run"):
                record = replace(record, duration_s=round(time.monotonic() - started, 3))
                self.store.push_record(record, self.history)
        except redis.RedisError as exc:
            record = replace(record, outcome="error", reason=f"state redis: {exc}")
        finally:
            try:
                lock.release()
            except (redis.exceptions.LockError, redis.RedisError):
                pass  # expired or unreachable: it frees itself at its TTL
        return self._emit(record, started)

    def _emit(self, record: TickRecord, started: float) -> TickRecord:
        if not record.duration_s:
            record = replace(record, duration_s=round(time.monotonic() - started, 3))
        log.info("%s", record.to_json())
        try:
            self.store.count(record)
        except redis.RedisError:
            pass  # the counters miss one tick; the record says what happened
        return record
