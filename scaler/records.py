"""The typed results of one tick, as they cross layers: to the log, to Redis, to the CLI and to /metrics.

`TickRecord.to_json` is the one serialization (a JSON line in the log, an entry of the decision history);
`TickRecord.from_json` reads it back. Plain frozen dataclasses, (de)serialized by pydantic's TypeAdapter.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from scaler.policy import Decision, GpuOffer, Observation, Worker


@dataclass(frozen=True)
class Created:
    name: str
    id: str
    gpu_type: str
    usd_per_hour: float


@dataclass(frozen=True)
class Executed:
    """What the execution core did: each create, drain and terminate that the provider or Celery accepted."""

    created: tuple[Created, ...] = ()
    drained: tuple[str, ...] = ()
    terminated: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    provider_errors: tuple[str, ...] = ()  # failed provider operations: list, price, lookup, create, terminate


@dataclass(frozen=True)
class WorkerView:
    name: str
    state: str
    gpu_type: str
    usd_per_hour: float
    busy: bool
    owned: bool
    requested: bool
    error: str | None = None

    @classmethod
    def of(cls, w: Worker) -> WorkerView:
        return cls(w.name, w.state, w.gpu_type, w.usd_per_hour, w.busy, w.owned, w.requested, w.error)


@dataclass(frozen=True)
class ObservationView:
    """What the tick read, as kept in the record (no URL, key or env value)."""

    waiting: int | None
    in_flight: int | None
    pending: int | None
    queued_chars: int | None
    oldest_waiting_s: float | None
    workers_known: bool
    states: dict[str, int]
    workers: tuple[WorkerView, ...]
    offers: tuple[GpuOffer, ...]
    unmanaged: tuple[str, ...] = ()  # gpu-long consumers the scaler does not own
    failed_sources: tuple[str, ...] = ()  # reads that failed: broker, celery, provider

    @classmethod
    def of(cls, obs: Observation, unmanaged: tuple[str, ...], failed_sources: tuple[str, ...]) -> ObservationView:
        return cls(waiting=obs.waiting, in_flight=obs.in_flight, pending=obs.pending, queued_chars=obs.queued_chars,
                   oldest_waiting_s=obs.oldest_waiting_s, workers_known=obs.workers_known,
                   states=dict(Counter(w.state for w in obs.workers)),
                   workers=tuple(WorkerView.of(w) for w in obs.workers), offers=obs.offers, unmanaged=unmanaged,
                   failed_sources=failed_sources)


@dataclass(frozen=True)
class ReconcileView:
    """The bookkeeping steps of the tick: what it adopted, forgot (confirmed gone), looked up and left alone."""

    adopted: tuple[str, ...] = ()
    forgotten: tuple[str, ...] = ()
    looked_up: tuple[str, ...] = ()  # pod ids asked for one by one
    omitted: tuple[str, ...] = ()  # known workers the listing left out although they exist: a failed read
    unresolved: tuple[str, ...] = ()  # known workers neither listed nor confirmed gone or alive: held
    foreign: tuple[str, ...] = ()  # pods with the name prefix that are not this deployment's: never touched


@dataclass(frozen=True)
class Health:
    """Whether the pool can serve: workers up and healthy, and the crash-loop breaker."""

    healthy: int  # owned workers idle or busy with no model error
    failed_in_a_row: int = 0
    last_error: str | None = None
    crash_loop: bool = False  # the breaker is open: creating stopped beyond the minimum
    tripped_at: float | None = None
    resumes_at: float | None = None


@dataclass(frozen=True)
class Headroom:
    """How far the pool is under each cap after the decision (negative: over it)."""

    max_workers: int
    max_usd_per_hour: float
    daily_budget_usd: float | None = None


@dataclass(frozen=True)
class TickRecord:
    """One tick, as logged and kept. `outcome`: ok, held, dry_run, skipped (another tick holds the lock),
    lock_lost (stopped acting) or error (the state Redis failed)."""

    at: str
    ts: float
    provider: str
    dry_run: bool
    outcome: str
    reason: str = ""
    duration_s: float = 0.0
    observation: ObservationView | None = None
    decision: Decision | None = None
    reconcile: ReconcileView | None = None
    executed: Executed | None = None
    health: Health | None = None
    headroom: Headroom | None = None

    def to_json(self) -> str:
        return _adapter().dump_json(self).decode()

    def to_dict(self) -> dict[str, Any]:
        return _adapter().dump_python(self, mode="json")

    @classmethod
    def from_json(cls, raw: str | bytes) -> TickRecord | None:
        """The record, or None for one this version cannot read (written by an older one)."""
        try:
            return _adapter().validate_json(raw)
        except ValidationError:
            return None


@functools.cache
def _adapter() -> TypeAdapter[TickRecord]:
    return TypeAdapter(TickRecord)
