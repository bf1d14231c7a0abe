"""`audiobook scaler status`, `audiobook scaler tick [--dry-run] [--json]` and `audiobook scaler resume`."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tasks.cli import CliError

if TYPE_CHECKING:
    from scaler.records import TickRecord
    from scaler.state import WorkerRecord


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scaler", help="the autoscaler of the GPU worker pool",
                                   description="Inspect the GPU pool autoscaler or run one tick by hand.")
    sub = parser.add_subparsers(dest="scaler_command", required=True)
    status = sub.add_parser("status", help="workers, states, prices, USD/hour, health and the last decision")
    status.add_argument("--json", action="store_true", help="print the last decision record as JSON")
    status.set_defaults(func=run_status)
    tick = sub.add_parser("tick", help="run one tick now and print its decision record")
    tick.add_argument("--dry-run", action="store_true", help="decide and record, create or terminate nothing")
    tick.add_argument("--json", action="store_true", help="print the whole decision record as JSON")
    tick.set_defaults(func=run_tick)
    resume = sub.add_parser("resume", help="end a crash-loop stop now: creating resumes at the next tick")
    resume.set_defaults(func=run_resume)


def _store():  # noqa: ANN202 - a StateStore
    from scaler.errors import ScalerError
    from scaler.tick import state_store
    from settings import get_settings
    from tasks import app

    try:
        return state_store(app, get_settings())
    except ScalerError as exc:
        raise CliError(str(exc)) from None


def run_status(args: argparse.Namespace) -> int:
    store = _store()
    try:
        records = store.records(1)
        durable = store.load()
    except Exception as exc:  # redis errors: say what failed, no traceback
        raise CliError(f"cannot read the scaler state: {type(exc).__name__}: {exc}") from None
    last = next(iter(records), None)
    if args.json:
        print(json.dumps(last.to_dict() if last else None, indent=2, sort_keys=True))
        return 0
    if last is None:
        print(f"no decision recorded yet ({len(durable.workers)} workers in the state)")
        return 0
    print(format_workers(last, durable.workers))
    print()
    print(format_health(last))
    print(format_record(last))
    return 0


def run_tick(args: argparse.Namespace) -> int:
    from scaler.errors import ScalerError
    from scaler.tick import Scaler
    from tasks import app

    try:
        record = Scaler.from_settings(app).tick(dry_run=True if args.dry_run else None)
    except ScalerError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(record.to_dict(), indent=2, sort_keys=True))
    else:
        print(format_record(record))
    return 1 if record.outcome in ("error", "lock_lost") else 0


def run_resume(args: argparse.Namespace) -> int:
    """Reset the breaker under the tick's lock, so a tick in flight cannot write the old one back."""
    from scaler.breaker import resumed
    from settings import get_settings

    store = _store()
    interval = get_settings().scaler_interval_s
    try:
        lock = store.lock(max(60.0, 3 * interval))
        if not lock.acquire(blocking=True, blocking_timeout=max(60.0, 3 * interval)):
            raise CliError("a tick holds the scaler's lock: try again in a moment")
        try:
            breaker = store.load().breaker
            store.save_breaker(resumed(breaker))
        finally:
            lock.release()
    except CliError:
        raise
    except Exception as exc:  # redis errors
        raise CliError(f"cannot write the scaler state: {type(exc).__name__}: {exc}") from None
    was = "stopped by a crash loop" if breaker.is_open(time.time()) else "not stopped"
    print(f"creating resumes at the next tick (it was {was}; last error: {breaker.last_error or 'none'})")
    return 0


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_health(record: TickRecord) -> str:
    """Whether the pool can serve: healthy workers and the crash-loop breaker, with the last error."""
    health = record.health
    if health is None:
        return "health: unknown"
    line = f"health: {health.healthy} healthy worker(s)"
    if health.crash_loop:
        line += (f"; CRASH LOOP: creating stopped since {_when(health.tripped_at)} after {health.failed_in_a_row} "
                 f"worker(s) in a row failed to start: {health.last_error}; resumes at {_when(health.resumes_at)} "
                 "or with `audiobook scaler resume`")
    elif health.failed_in_a_row:
        line += f"; {health.failed_in_a_row} worker(s) in a row failed to start: {health.last_error}"
    foreign = record.reconcile.foreign if record.reconcile else ()
    if foreign:
        line += f"\nleft alone: {len(foreign)} pod(s) of another deployment ({', '.join(foreign[:5])})"
    return line


def format_workers(record: TickRecord, durable: dict[str, WorkerRecord]) -> str:
    """The scaler's workers (its Redis state), with the state each had at the last tick."""
    observed = {w.name: w for w in (record.observation.workers if record.observation else ())}
    rows = [("NAME", "STATE", "GPU", "USD/H", "BUSY", "OWNED", "AGE", "ERROR")]
    total = 0.0
    names = list(durable) + [n for n in observed if n not in durable]
    for name in names:
        seen, stored = observed.get(name), durable.get(name)
        state = seen.state if seen else ("booting" if stored is None or stored.status == "requested"
                                         else stored.status)
        if stored is not None and stored.status in ("draining", "terminating") and state != stored.status:
            state = f"{state}, {stored.status}"
        usd = stored.usd_per_hour if stored is not None else seen.usd_per_hour if seen else 0.0
        total += usd
        age = f"{time.time() - stored.created_at:.0f}s" if stored is not None and stored.created_at else "-"
        error = (seen.error if seen else None) or (stored.error if stored else None) or ""
        rows.append((name, state, (stored.gpu_type if stored else seen.gpu_type if seen else "") or "-",
                     f"{usd:.3f}", "yes" if seen and seen.busy else "no", "yes" if stored is not None else "orphan",
                     age, error[:80]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.append(f"{len(names)} workers, {total:.3f} USD/h")
    return "\n".join(lines)


def format_record(record: TickRecord) -> str:
    lines = [f"{record.at}  outcome={record.outcome}  provider={record.provider}"
             f"{'  (dry run)' if record.dry_run else ''}"]
    if record.reason:
        lines.append(f"reason: {record.reason}")
    decision = record.decision
    if decision is not None:
        lines.append(f"decision: {decision.reason}")
        lines.append(f"target {decision.target} (policy {decision.policy} wants {decision.desired}), "
                     f"current {decision.current}, {decision.usd_per_hour:.3f} USD/h now, "
                     f"{decision.spent_today_usd:.2f} USD today"
                     + (f", bound by {decision.bound_by}" if decision.bound_by else ""))
        for create in decision.create:
            lines.append(f"  create {create.gpu_type} at {create.usd_per_hour:.3f} USD/h")
        for name in decision.drain:
            lines.append(f"  drain {name}")
        for name in decision.terminate:
            lines.append(f"  terminate {name}")
        for failure in decision.failures:
            lines.append(f"  read failed: {failure}")
    if record.executed is not None:
        for failure in record.executed.failures:
            lines.append(f"  action failed: {failure}")
    return "\n".join(lines)
