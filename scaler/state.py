"""The scaler's durable state, so a restarted beat carries on: worker records, policy memory, GPU-type
backoff, the crash-loop breaker, the decision history, counters, the single-flight lock and the local lease.

`Store` is what the execution core writes through; `StateStore` keeps it in Redis, `MemoryStore` in a dict
(the simulator and in-memory tests). Redis keys under `<prefix>scaler:<name prefix>:`: `workers` (hash name
-> WorkerRecord JSON), `memory`, `backoff` (hash GPU type -> epoch seconds), `breaker`, `decisions` (the last
N TickRecords, newest first), `counters` (hash), `lock` (redis-py Lock with a timeout: it expires if its
holder dies) and `lease` (renewed by every tick; local workers stop when it lapses).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import redis
from redis.lock import Lock

from scaler.breaker import Breaker
from scaler.errors import LockLost, ScalerError
from scaler.policy import Memory
from scaler.records import TickRecord
from scaler.redis_client import is_redis_url, redis_client

if TYPE_CHECKING:
    from celery import Celery

    from settings import Settings

RecordStatus = Literal["requested", "active", "draining", "terminating"]
Outcome = Literal["", "ready", "failed"]


@dataclass
class WorkerRecord:
    """What the scaler knows of one worker beyond the provider's listing."""

    name: str
    status: RecordStatus = "requested"
    gpu_type: str = ""
    usd_per_hour: float = 0.0
    instance_id: str | None = None
    created_at: float = 0.0  # when the create was sent, or when an orphan was first seen
    listed_at: float | None = None  # first listing by the provider
    last_seen_at: float | None = None  # last answer of its Celery worker
    drain_started_at: float | None = None
    adopted: bool = False
    terminated_at: float | None = None  # the provider accepted its terminate
    outcome: Outcome = ""  # how its start ended, counted once by the crash-loop breaker
    error: str | None = None  # why it failed to become ready

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def copy(self) -> WorkerRecord:
        """A copy to change (every field holds an immutable value, so a shallow copy is a whole one)."""
        clone = object.__new__(WorkerRecord)
        clone.__dict__.update(self.__dict__)
        return clone

    @classmethod
    def from_json(cls, raw: bytes | str) -> WorkerRecord:
        data = json.loads(raw)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Durable:
    workers: dict[str, WorkerRecord] = field(default_factory=dict)
    memory: Memory = field(default_factory=Memory)
    backoff: dict[str, float] = field(default_factory=dict)
    breaker: Breaker = field(default_factory=Breaker)


class Store(Protocol):
    """The state the execution core reads once per tick and writes step by step."""

    def load(self) -> Durable: ...

    def put_worker(self, record: WorkerRecord) -> None: ...

    def put_workers(self, records: list[WorkerRecord]) -> None: ...

    def delete_worker(self, name: str) -> None: ...

    def set_backoff(self, gpu_type: str, until: float) -> None: ...

    def save_memory(self, memory: Memory) -> None: ...

    def save_breaker(self, breaker: Breaker) -> None: ...


def tick_counts(record: TickRecord) -> Counter[str]:
    """What one tick adds to the cumulative counters (`<counter>:<label>`), exported as Prometheus counters."""
    counts: Counter[str] = Counter({f"ticks:{record.outcome}": 1})
    if record.decision is not None:
        counts.update(f"cap_hits:{cap}" for cap in record.decision.caps_hit)
    if record.observation is not None:
        counts.update(f"read_failures:{source}" for source in record.observation.failed_sources)
    if record.executed is not None:
        counts.update(f"provider_errors:{op}" for op in record.executed.provider_errors)
        for action in ("created", "drained", "terminated"):
            if done := getattr(record.executed, action):
                counts[f"actions:{action}"] += len(done)
    return counts


class StateStore:
    """Redis-held state of one scaler (one name prefix)."""

    def __init__(self, client: redis.Redis, name_prefix: str, key_prefix: str = "") -> None:
        self.client = client
        self.namespace = f"{key_prefix}scaler:{name_prefix}:"

    def key(self, name: str) -> str:
        return self.namespace + name

    # --- lock and lease ---------------------------------------------------------------------------------
    def lock(self, ttl_s: float) -> Lock:
        """The single-flight lock of the tick; it expires `ttl_s` after its last (re)acquire."""
        return self.client.lock(self.key("lock"), timeout=ttl_s, blocking=False, thread_local=False)

    @staticmethod
    def keep(lock: Lock) -> None:
        """Reset the lock's TTL before an action; raises LockLost if another holder has it now."""
        try:
            lock.reacquire()
        except redis.exceptions.LockError as exc:
            raise LockLost(f"single-flight lock lost: {exc}") from None

    def renew_lease(self, now: float, ttl_s: float) -> None:
        """The control plane is alive: local workers started by this scaler keep running for `ttl_s` more."""
        self.client.set(self.key("lease"), repr(now), px=max(1, int(ttl_s * 1000)))

    # --- state ------------------------------------------------------------------------------------------
    def load(self) -> Durable:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.key("workers"))
        pipe.get(self.key("memory"))
        pipe.hgetall(self.key("backoff"))
        pipe.get(self.key("breaker"))
        workers_raw, memory_raw, backoff_raw, breaker_raw = pipe.execute()
        records = (WorkerRecord.from_json(raw) for raw in workers_raw.values())
        workers = {record.name: record for record in records}
        memory = Memory.from_dict(json.loads(memory_raw)) if memory_raw else Memory()
        backoff = {k.decode(): float(v) for k, v in backoff_raw.items()}
        breaker = Breaker(**json.loads(breaker_raw)) if breaker_raw else Breaker()
        return Durable(workers=workers, memory=memory, backoff=backoff, breaker=breaker)

    def put_worker(self, record: WorkerRecord) -> None:
        self.client.hset(self.key("workers"), record.name, record.to_json())

    def put_workers(self, records: list[WorkerRecord]) -> None:
        if records:
            self.client.hset(self.key("workers"), mapping={r.name: r.to_json() for r in records})

    def delete_worker(self, name: str) -> None:
        self.client.hdel(self.key("workers"), name)

    def save_memory(self, memory: Memory) -> None:
        self.client.set(self.key("memory"), json.dumps(memory.to_dict()))

    def save_breaker(self, breaker: Breaker) -> None:
        self.client.set(self.key("breaker"), json.dumps(asdict(breaker)))

    def set_backoff(self, gpu_type: str, until: float) -> None:
        self.client.hset(self.key("backoff"), gpu_type, until)

    # --- decision records and counters ------------------------------------------------------------------
    def push_record(self, record: TickRecord, keep: int) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.key("decisions"), record.to_json())
        pipe.ltrim(self.key("decisions"), 0, keep - 1)
        pipe.execute()

    def records(self, count: int = 1) -> list[TickRecord]:
        """The newest `count` records this version can read, newest first."""
        parsed = (TickRecord.from_json(raw) for raw in self.client.lrange(self.key("decisions"), 0, count - 1))
        return [record for record in parsed if record is not None]

    def count(self, record: TickRecord) -> None:
        """Add one tick to the shared counters (every process exports the same totals)."""
        pipe = self.client.pipeline(transaction=True)
        for name, n in tick_counts(record).items():
            pipe.hincrby(self.key("counters"), name, n)
        pipe.execute()

    def counters(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(self.key("counters")).items()}


class MemoryStore:
    """The same state in a dict: for the simulator and in-memory tests. Values are copied in and out."""

    def __init__(self) -> None:
        self.workers: dict[str, WorkerRecord] = {}
        self.memory = Memory()
        self.backoff: dict[str, float] = {}
        self.breaker = Breaker()
        self.history: list[TickRecord] = []

    def load(self) -> Durable:
        return Durable(workers={n: r.copy() for n, r in self.workers.items()}, memory=self.memory,
                       backoff=dict(self.backoff), breaker=self.breaker)

    def put_worker(self, record: WorkerRecord) -> None:
        self.workers[record.name] = record.copy()

    def put_workers(self, records: list[WorkerRecord]) -> None:
        for record in records:
            self.put_worker(record)

    def delete_worker(self, name: str) -> None:
        self.workers.pop(name, None)

    def save_memory(self, memory: Memory) -> None:
        self.memory = memory

    def save_breaker(self, breaker: Breaker) -> None:
        self.breaker = breaker

    def set_backoff(self, gpu_type: str, until: float) -> None:
        self.backoff[gpu_type] = until


def state_client(app: Celery, s: Settings, **kwargs: Any) -> redis.Redis:
    """The Redis that holds the scaler's state (and the workers' health reports): the broker if it is Redis,
    else the result backend."""
    broker_url = str(app.conf.broker_url or s.broker_url.get_secret_value())
    candidates = ((broker_url, app.conf.broker_transport_options),
                  (s.backend_url, app.conf.result_backend_transport_options))
    found = next(((url, options) for url, options in candidates if is_redis_url(url)), None)
    if found is None:
        raise ScalerError("the scaler keeps its state in Redis: CELERY_BROKER_URL or CELERY_RESULT_BACKEND "
                          "must be a redis://, rediss:// or sentinel:// URL")
    return redis_client(found[0], found[1], **({"socket_timeout": 10, "socket_connect_timeout": 5} | kwargs))
