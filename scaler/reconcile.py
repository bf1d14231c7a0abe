"""`reconcile`: what the scaler owns, from its saved records, the provider's listing, lookups by id and Celery.

Pure: records and reads in, the policy's Workers and the bookkeeping steps out (the core writes them). The rules:

- Never forget what we pay for. A record with a pod id is forgotten only when the provider confirms the pod
  gone: a lookup by id says so, or we terminated it and the listing no longer shows it. A reservation (create
  sent, answer lost) is bound by name when its pod is listed, and dropped only after the boot timeout when a
  complete listing still does not show it.
- A listing that leaves out a pod we know, which a lookup then finds, is a failed read: the tick holds.
- A pod carrying our marker that we do not know is looked up, not guessed about, before it is adopted
  (or, with SCALER_ORPHANS=terminate, removed).
- Our pods only: pods with the name prefix but another deployment's marker (or none) are reported, never
  adopted, drained or terminated.
- A live Celery answer outranks the provider's status; boot and silence timeouts count from the last sign
  of life (the create, then the worker's last answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scaler.errors import ProviderError
from scaler.health import WorkerHealth
from scaler.policy import PolicyConfig, Worker, WorkerState
from scaler.providers.base import Instance, Lookup, name_from_nodename
from scaler.state import WorkerRecord
from scaler.workers import CeleryWorker

#: Lookups by id in one tick at most (they run concurrently under one deadline); the rest wait a tick, held.
LOOKUP_LIMIT = 64


@dataclass(frozen=True)
class Reads:
    """What one tick read. None: that read failed."""

    listing: tuple[Instance, ...] | None
    lookups: Mapping[str, Lookup]  # pod id -> the pod, None (gone) or the error
    celery: Mapping[str, CeleryWorker] | None  # by nodename
    health: Mapping[str, WorkerHealth]  # by nodename


@dataclass(frozen=True)
class Reconciled:
    """What the scaler owns now, and the bookkeeping steps that got it there."""

    workers: tuple[Worker, ...]  # owned workers and removable orphans, as the policy sees them
    records: dict[str, WorkerRecord]  # every owned record after this tick's bookkeeping
    changed: tuple[str, ...]  # records to write
    forgotten: tuple[str, ...]  # confirmed gone: records to delete
    adopted: tuple[str, ...] = ()
    orphans: Mapping[str, WorkerRecord] | None = None  # marked, unknown, confirmed, not adopted
    foreign: tuple[str, ...] = ()  # the name prefix, but not this deployment: never touched
    omitted: tuple[str, ...] = ()  # known, left out by the listing, found by a lookup
    unresolved: tuple[str, ...] = ()  # neither listed nor confirmed either way this tick
    ready: tuple[str, ...] = ()  # came up with their model loaded (first time)
    failed: tuple[tuple[str, str], ...] = ()  # (name, error): failed to become ready (first time)
    nodenames: Mapping[str, str] | None = None  # worker name -> Celery nodename, for drains
    unmanaged: tuple[str, ...] = ()  # gpu-long consumers that are not ours
    failures: tuple[str, ...] = ()
    complete: bool = True  # every worker we own is accounted for and Celery answered: the policy may act


def lookups_needed(records: Mapping[str, WorkerRecord], listing: Sequence[Instance], deployment: str,
                   limit: int = LOOKUP_LIMIT) -> list[str]:
    """Pod ids to ask for one by one: known pods the listing left out, and unknown pods carrying our marker."""
    listed = {inst.id for inst in listing}
    known = {r.instance_id for r in records.values() if r.instance_id}
    reserved = {r.name for r in records.values() if r.instance_id is None}
    ids = [r.instance_id for r in records.values()
           if r.instance_id and r.instance_id not in listed and r.terminated_at is None]
    ids += [inst.id for inst in listing
            if inst.id not in known and inst.name not in reserved and inst.deployment == deployment]
    return ids[:limit]  # type: ignore[return-value]


def reconcile(saved: Mapping[str, WorkerRecord], reads: Reads, config: PolicyConfig, deployment: str,
              now: float) -> Reconciled:
    """Join the saved records with this tick's reads (see the module docstring for the rules)."""
    records = {name: r.copy() for name, r in saved.items()}  # `saved` stays as it was: changes are found by it
    listing = reads.listing
    listed = {inst.id: inst for inst in listing or ()}
    listed_names = {inst.name: inst for inst in listing or ()}
    known = {r.instance_id: name for name, r in records.items() if r.instance_id}
    failures: list[str] = []
    forgotten: list[str] = []
    omitted: list[str] = []
    unresolved: list[str] = []
    found: dict[str, Instance | None] = {}

    for name, record in records.items():
        instance: Instance | None = None
        if record.instance_id is not None:
            if record.instance_id in listed:
                instance = listed[record.instance_id]
            elif listing is None:
                unresolved.append(name)
            elif record.terminated_at is not None:
                forgotten.append(name)  # terminated by us and no longer listed
            else:
                answer = reads.lookups.get(record.instance_id, _NOT_ASKED)
                if answer is None:
                    forgotten.append(name)  # the provider confirms it gone
                elif isinstance(answer, Instance):
                    instance = answer
                    if record.listed_at is not None:
                        omitted.append(name)
                else:
                    unresolved.append(name)
                    if isinstance(answer, ProviderError):
                        failures.append(f"lookup of {name}: {answer}")
        else:
            match = listed_names.get(name)
            if match is not None and match.id not in known and match.deployment in (deployment, None):
                instance = match  # a create whose answer was lost or late: its pod is listed now
                record.instance_id = match.id
                known[match.id] = name
        found[name] = instance

    complete_listing = listing is not None and not omitted and not unresolved
    for name, record in records.items():
        if record.instance_id is None and complete_listing and now - record.created_at >= config.boot_timeout_s:
            forgotten.append(name)  # the create never happened: no listing has shown it for a boot timeout
    for name in forgotten:
        records.pop(name, None)
        found.pop(name, None)
    if omitted:
        failures.append(f"provider listing left out {len(omitted)} known worker(s) that still exist "
                        f"({', '.join(omitted)}): a failed read")
    if unresolved and listing is not None:
        failures.append(f"{len(unresolved)} known worker(s) neither listed nor confirmed gone: "
                        f"{', '.join(unresolved)}")

    # Pods with the name prefix that we do not know: ours (marker) after a lookup, else foreign.
    adopted: list[str] = []
    foreign: list[str] = []
    orphans: dict[str, WorkerRecord] = {}
    unconfirmed: list[Worker] = []
    for inst in listing or ():
        if inst.id in known:
            continue
        if inst.deployment != deployment:
            foreign.append(inst.name)
            continue
        answer = reads.lookups.get(inst.id, _NOT_ASKED)
        if answer is None:
            continue  # listed, yet gone: a stale listing
        if not isinstance(answer, Instance):
            unresolved.append(inst.name)  # counted against the caps, never acted on
            failures.append(f"unknown marked worker {inst.name} not confirmed yet")
            unconfirmed.append(Worker(name=inst.name, state="booting", usd_per_hour=inst.usd_per_hour,
                                      created_at=inst.created_at or now, gpu_type=inst.gpu_type, owned=False,
                                      requested=True))
            continue
        record = WorkerRecord(name=answer.name or inst.name, status="active", gpu_type=answer.gpu_type,
                              usd_per_hour=answer.usd_per_hour, instance_id=answer.id,
                              created_at=answer.created_at or now, listed_at=now, adopted=True)
        found[record.name] = answer
        if config.orphans == "adopt":
            records[record.name] = record
            adopted.append(record.name)
        else:
            orphans[record.name] = record

    celery = reads.celery
    answering: dict[str, tuple[str, CeleryWorker]] = {}
    for nodename, info in (celery or {}).items():
        name = name_from_nodename(nodename)
        if name is not None:
            answering[name] = (nodename, info)
    health = {name: h for n, h in reads.health.items() if (name := name_from_nodename(n)) is not None}

    workers: list[Worker] = []
    ready: list[str] = []
    failed: list[tuple[str, str]] = []
    nodenames: dict[str, str] = {}
    for name, record in (records | orphans).items():
        instance = found.get(name)
        nodename, info = answering.get(name, (None, None))
        if info is not None:
            record.last_seen_at = now
            nodenames[name] = nodename  # type: ignore[assignment]
        if instance is not None:
            if record.listed_at is None and instance.id in listed:
                record.listed_at = now
            if record.status == "requested":
                record.status = "active"
            record.usd_per_hour = max(record.usd_per_hour, instance.usd_per_hour)
        report = health.get(name)
        error = report.error or "model cannot be loaded" if report is not None and not report.ok else None
        state = _state(record, info)
        if celery is not None and not record.outcome:
            if error is not None:
                record.outcome, record.error = "failed", error
                failed.append((name, error))
            elif info is not None and info.consuming and report is not None and report.ok:
                record.outcome = "ready"
                ready.append(name)
            elif state == "booting" and record.instance_id and now - record.created_at >= config.boot_timeout_s:
                record.outcome = "failed"
                record.error = f"{name} did not register within {config.boot_timeout_s:g}s"
                failed.append((name, record.error))
        workers.append(Worker(
            name=name, state=state, usd_per_hour=record.usd_per_hour, created_at=record.created_at,
            gpu_type=record.gpu_type, busy=info.busy if info is not None else False,
            consuming=info.consuming if info is not None else record.status != "draining",
            owned=name not in orphans, requested=record.instance_id is None,
            exited=instance is not None and instance.status == "exited" and info is None,
            terminating=record.status == "terminating", last_seen_at=record.last_seen_at, error=error))
    workers.extend(unconfirmed)

    ours = {w.name for w in workers}
    unmanaged = tuple(sorted(n for n, info in (celery or {}).items()
                             if info.consuming and name_from_nodename(n) not in ours))
    changed = tuple(name for name, r in records.items() if saved.get(name) != r)
    return Reconciled(
        workers=tuple(workers), records=records, changed=changed, forgotten=tuple(forgotten),
        adopted=tuple(adopted), orphans=orphans, foreign=tuple(foreign), omitted=tuple(omitted),
        unresolved=tuple(unresolved), ready=tuple(ready), failed=tuple(failed), nodenames=nodenames,
        unmanaged=unmanaged, failures=tuple(failures),
        complete=listing is not None and celery is not None and not omitted and not unresolved)


def _state(record: WorkerRecord, info: CeleryWorker | None) -> WorkerState:
    """A live Celery answer outranks the provider's status (a pod listed without a runtime may be busy)."""
    if info is not None:
        if record.status == "draining" or not info.consuming:
            return "draining"
        return "busy" if info.busy else "idle"
    return "booting" if record.last_seen_at is None else "silent"


_NOT_ASKED = object()
