"""The scaler's durable state in Redis, so a restarted beat carries on, and the single-flight lock.

Keys under `<prefix>scaler:<name prefix>:`: `workers` (hash name -> WorkerRecord JSON), `memory` (the
policy's Memory), `backoff` (hash GPU type -> epoch seconds until which it is skipped), `decisions`
(the last N decision records, newest first), `lock` (redis-py Lock with a timeout: it expires if its
holder dies).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import redis
from redis.lock import Lock

from scaler.errors import LockLost
from scaler.policy import Memory

RecordStatus = Literal["requested", "active", "draining", "terminating"]


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

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


class StateStore:
    """Redis-held state of one scaler (one name prefix)."""

    def __init__(self, client: redis.Redis, name_prefix: str, key_prefix: str = "") -> None:
        self.client = client
        self.namespace = f"{key_prefix}scaler:{name_prefix}:"

    def key(self, name: str) -> str:
        return self.namespace + name

    # --- lock -------------------------------------------------------------------------------------------
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

    # --- state ------------------------------------------------------------------------------------------
    def load(self) -> Durable:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.key("workers"))
        pipe.get(self.key("memory"))
        pipe.hgetall(self.key("backoff"))
        workers_raw, memory_raw, backoff_raw = pipe.execute()
        records = (WorkerRecord.from_json(raw) for raw in workers_raw.values())
        workers = {record.name: record for record in records}
        memory = Memory.from_dict(json.loads(memory_raw)) if memory_raw else Memory()
        backoff = {k.decode(): float(v) for k, v in backoff_raw.items()}
        return Durable(workers=workers, memory=memory, backoff=backoff)

    def put_worker(self, record: WorkerRecord) -> None:
        self.client.hset(self.key("workers"), record.name, record.to_json())

    def delete_worker(self, name: str) -> None:
        self.client.hdel(self.key("workers"), name)

    def save(self, workers: dict[str, WorkerRecord], forgotten: list[str], memory: Memory) -> None:
        pipe = self.client.pipeline(transaction=True)
        if workers:
            pipe.hset(self.key("workers"), mapping={n: r.to_json() for n, r in workers.items()})
        if forgotten:
            pipe.hdel(self.key("workers"), *forgotten)
        pipe.set(self.key("memory"), json.dumps(memory.to_dict()))
        pipe.execute()

    def set_backoff(self, gpu_type: str, until: float) -> None:
        self.client.hset(self.key("backoff"), gpu_type, until)

    # --- decision records -------------------------------------------------------------------------------
    def push_record(self, record: dict[str, Any], keep: int) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.key("decisions"), json.dumps(record, sort_keys=True))
        pipe.ltrim(self.key("decisions"), 0, keep - 1)
        pipe.execute()

    def records(self, count: int = 1) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(self.key("decisions"), 0, count - 1)]
