"""`audiobook scaler status` and `audiobook scaler tick [--dry-run] [--json]`."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scaler", help="the autoscaler of the GPU worker pool",
                                   description="Inspect the GPU pool autoscaler or run one tick by hand.")
    sub = parser.add_subparsers(dest="scaler_command", required=True)
    status = sub.add_parser("status", help="workers, states, prices, USD/hour and the last decision")
    status.add_argument("--json", action="store_true", help="print the last decision record as JSON")
    status.set_defaults(func=run_status)
    tick = sub.add_parser("tick", help="run one tick now and print its decision record")
    tick.add_argument("--dry-run", action="store_true", help="decide and record, create or terminate nothing")
    tick.add_argument("--json", action="store_true", help="print the whole decision record as JSON")
    tick.set_defaults(func=run_tick)


def run_status(args: argparse.Namespace) -> int:
    from scaler.errors import ScalerError
    from scaler.tick import state_store
    from settings import get_settings
    from tasks import app

    try:
        store = state_store(app, get_settings())
        records = store.records(1)
        durable = store.load()
    except ScalerError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # redis errors: say what failed, no traceback
        raise CliError(f"cannot read the scaler state: {type(exc).__name__}: {exc}") from None
    last = next((r for r in records), None)
    if args.json:
        print(json.dumps(last, indent=2, sort_keys=True))
        return 0
    if last is None:
        print(f"no decision recorded yet ({len(durable.workers)} workers in the state)")
        return 0
    print(format_workers(last, durable.workers))
    print()
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
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(format_record(record))
    return 1 if record.get("outcome") in ("error", "lock_lost") else 0


def format_workers(record: dict[str, Any], durable: dict[str, Any]) -> str:
    """The scaler's workers (its Redis state), with the state each had at the last tick."""
    observed = {w["name"]: w for w in (record.get("observation") or {}).get("workers") or []}
    rows = [("NAME", "STATE", "GPU", "USD/H", "BUSY", "OWNED", "AGE")]
    total = 0.0
    names = list(durable) + [n for n in observed if n not in durable]
    for name in names:
        seen, stored = observed.get(name, {}), durable.get(name)
        state = seen.get("state") or ("booting" if stored is None or stored.status == "requested" else stored.status)
        if stored is not None and stored.status in ("draining", "terminating") and state != stored.status:
            state = f"{state}, {stored.status}"
        usd = stored.usd_per_hour if stored is not None else seen.get("usd_per_hour", 0.0)
        total += usd
        age = f"{time.time() - stored.created_at:.0f}s" if stored is not None and stored.created_at else "-"
        rows.append((name, state, (stored.gpu_type if stored else seen.get("gpu_type")) or "-", f"{usd:.3f}",
                     "yes" if seen.get("busy") else "no", "yes" if stored is not None else "orphan", age))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.append(f"{len(names)} workers, {total:.3f} USD/h")
    return "\n".join(lines)


def format_record(record: dict[str, Any]) -> str:
    lines = [f"{record.get('at')}  outcome={record.get('outcome')}  provider={record.get('provider')}"
             f"{'  (dry run)' if record.get('dry_run') else ''}"]
    if record.get("reason"):
        lines.append(f"reason: {record['reason']}")
    decision = record.get("decision")
    if decision:
        lines.append(f"decision: {decision['reason']}")
        lines.append(f"target {decision['target']} (policy {decision['policy']} wants {decision['desired']}), "
                     f"current {decision['current']}, {decision['usd_per_hour']:.3f} USD/h now, "
                     f"{decision['spent_today_usd']:.2f} USD today"
                     + (f", bound by {decision['bound_by']}" if decision.get("bound_by") else ""))
        for create in decision["create"]:
            lines.append(f"  create {create['gpu_type']} at {create['usd_per_hour']:.3f} USD/h")
        for name in decision["drain"]:
            lines.append(f"  drain {name}")
        for name in decision["terminate"]:
            lines.append(f"  terminate {name}")
        for failure in decision["failures"]:
            lines.append(f"  read failed: {failure}")
    executed = record.get("executed") or {}
    for failure in executed.get("failures") or []:
        lines.append(f"  action failed: {failure}")
    return "\n".join(lines)
