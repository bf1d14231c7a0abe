"""`audiobook simulate`: every scaling policy on one traffic trace, as a table (or JSON) and a PNG; with
`--faults`, every policy through a storm of provider lies, as a table of what must never happen."""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

from tasks.cli import CliError

DEFAULT_TRACE = "diurnal-spike"
DEFAULT_PLOT_DIR = Path("var/sim")
DEFAULT_FAULT_TICKS = 10_000


def register(subparsers: argparse._SubParsersAction) -> None:
    from scaler.sim.peers import PEER_NAMES
    from scaler.sim.traces import TRACES

    parser = subparsers.add_parser(
        "simulate", help="compare the scaling policies on a simulated day",
        description="Run the scaler's real policy, and its peers, against simulated pods and chapters on one "
                    "trace; print one row per policy and write a PNG of queue, pods and USD/hour. The policy "
                    "knobs come from the SCALER_* settings. See docs/simulator.md.")
    parser.add_argument("--trace", default=DEFAULT_TRACE,
                        help=f"{', '.join(TRACES)}, or a .json/.csv trace file (default {DEFAULT_TRACE})")
    parser.add_argument("--seed", default="1", help="seed of the trace and of the simulated world (default 1)")
    parser.add_argument("--policies", default=",".join(PEER_NAMES),
                        help=f"comma-separated subset of {', '.join(PEER_NAMES)}")
    parser.add_argument("--interval", help="seconds between scaler ticks (default SCALER_INTERVAL_SECONDS)")
    parser.add_argument("--boot-seconds", default="180", help="median pod boot time; jitter is 25 %% (default 180)")
    parser.add_argument("--capacity-error-rate", default="0.05",
                        help="share of create attempts refused for lack of capacity (default 0.05)")
    parser.add_argument("--faults", action="store_true",
                        help="run every policy through seeded random provider faults (listings that omit pods, null "
                             "runtimes, lost and late creates, foreign pods, price changes, crash-looping images, "
                             "hanging price calls) and report the caps at every instant, busy workers killed and "
                             "pods still unknown 2 ticks after the faults stop; exit status 1 on any violation")
    parser.add_argument("--ticks", default=str(DEFAULT_FAULT_TICKS),
                        help=f"with --faults: ticks of faults (default {DEFAULT_FAULT_TICKS:,}); the trace repeats")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--plot", type=Path, help=f"PNG to write (default {DEFAULT_PLOT_DIR}/<trace>-seed<N>.png)")
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaler.sim import PEER_NAMES, SimConfig, compare
    from scaler.sim.report import summarize
    from scaler.sim.traces import TraceError, get_trace

    seed = _number("--seed", args.seed, int, low=0)
    boot_s = _number("--boot-seconds", args.boot_seconds, float, low=0)
    capacity_error_rate = _number("--capacity-error-rate", args.capacity_error_rate, float, low=0, high=0.99)
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    unknown = [p for p in policies if p not in PEER_NAMES]
    if unknown or not policies:
        raise CliError(f"unknown policy {', '.join(unknown) or '(none)'}: use {', '.join(PEER_NAMES)}")
    config, interval_default, crash_loop = _policy_config()
    interval = _number("--interval", args.interval, float, low=1) if args.interval else interval_default
    try:
        trace = get_trace(args.trace, seed)
    except TraceError as exc:
        raise CliError(str(exc)) from None
    if not trace.chapters:
        raise CliError(f"trace {args.trace} has no chapters")
    sim_config = replace(SimConfig(), interval_s=interval, boot_s=boot_s, capacity_error_rate=capacity_error_rate,
                         crash_loop_workers=crash_loop[0], crash_loop_cooloff_s=crash_loop[1])
    if args.faults:
        ticks = _number("--ticks", args.ticks, int, low=1)
        return _run_faults(args, seed, config, sim_config, policies, ticks)

    started = time.perf_counter()
    runs = compare(trace, config, sim_config, seed, policies)
    elapsed = time.perf_counter() - started
    rows = [summarize(r) for r in runs]
    plot_path = None
    if not args.no_plot:
        plot_path = args.plot or DEFAULT_PLOT_DIR / f"{trace.name}-seed{seed}.png"
        plot_path = _plot(runs, plot_path, f"{trace.name}, seed {seed}: {len(trace.chapters):,} chapters, "
                                           f"{trace.total_work_s / 3600:.0f} GPU-hours of work")
    if args.json:
        print(json.dumps({"trace": trace.name, "seed": seed, "chapters": len(trace.chapters),
                          "work_gpu_h": trace.total_work_s / 3600, "seconds": elapsed, "plot": str(plot_path or ""),
                          "config": asdict(config), "world": asdict(sim_config),
                          "policies": [row.to_dict() for row in rows]}, indent=2))
        return 0
    _print_table(trace, seed, config, rows, plot_path, elapsed)
    return 0


def _number(flag: str, text: str, kind: type, low: float | None = None, high: float | None = None):  # noqa: ANN202
    """A numeric option, or a one-line CliError naming it."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise CliError(f"{flag} must be {'an integer' if kind is int else 'a number'}, not {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise CliError(f"{flag} must be a finite number, not {text!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise CliError(f"{flag} must be {bounds}, not {text!r}")
    return value


def _policy_config():  # noqa: ANN202
    """The PolicyConfig the beat task builds from the SCALER_* settings, the tick interval and the crash-loop
    breaker's (workers, cool-off)."""
    from scaler.tick import policy_config
    from settings import SettingsError, get_settings

    try:
        s = get_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    return policy_config(s), s.scaler_interval_s, (s.scaler_crash_loop_workers, s.scaler_crash_loop_cooloff_s)


def _run_faults(args: argparse.Namespace, seed: int, config, sim_config, policies: tuple[str, ...],  # noqa: ANN001
                ticks: int) -> int:
    """The fault storm: one row per policy; exit status 1 when any row has a violation."""
    from scaler.sim import STORM, fault_storm
    from scaler.sim.report import fault_table, summarize_faults
    from scaler.sim.traces import TraceError, repeated

    try:
        trace = repeated(args.trace, seed, (ticks + 2) * sim_config.interval_s)
    except TraceError as exc:
        raise CliError(str(exc)) from None
    started = time.perf_counter()
    rows = [summarize_faults(run) for run in fault_storm(trace, config, ticks, sim_config, seed, policies)]
    elapsed = time.perf_counter() - started
    violations = sum(row.violations for row in rows)
    if args.json:
        print(json.dumps({"trace": trace.name, "seed": seed, "ticks": ticks, "seconds": elapsed,
                          "faults": asdict(STORM), "violations": violations,
                          "policies": [row.to_dict() for row in rows]}, indent=2))
        return 1 if violations else 0
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=220)
    console.print(fault_table(rows, f"fault storm: {ticks:,} ticks of {trace.name}, seed {seed} "
                                    f"({sim_config.interval_s:g}s ticks)"))
    for row in rows:
        console.print(f"{row.policy}: " + ", ".join(f"{kind} {n}" for kind, n in row.fault_counts.items()),
                      highlight=False)
    console.print(f"{violations} violations; simulated in {elapsed:.1f}s", highlight=False)
    return 1 if violations else 0


def _plot(runs, path: Path, title: str) -> Path:  # noqa: ANN001
    try:
        from scaler.sim.plot import plot_runs
    except ImportError:
        raise CliError("the plot needs matplotlib: pip install 'audiobook[sim]', or pass --no-plot") from None
    try:
        return plot_runs(runs, path, title)
    except ImportError:
        raise CliError("the plot needs matplotlib: pip install 'audiobook[sim]', or pass --no-plot") from None
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_table(trace, seed: int, config, rows, plot_path: Path | None, elapsed: float) -> None:  # noqa: ANN001
    from rich.console import Console

    from scaler.sim.report import table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a pipe or a file gets the whole table, not one squeezed to 80 columns
    console.print(table(rows, f"{trace.name}, seed {seed}: {len(trace.chapters):,} chapters, "
                              f"{trace.total_work_s / 3600:.1f} GPU-hours of work"))
    console.print(f"caps: {config.max_workers} workers, {config.max_usd_per_hour:g} USD/h; backlog: "
                  f"target_drain_s={config.target_drain_s:g} seconds_per_char={config.seconds_per_char:g} "
                  f"boot_s={config.boot_s:g}; simulated in {elapsed:.1f}s", highlight=False)
    if plot_path is not None:
        console.print(f"plot: {plot_path}", highlight=False)
