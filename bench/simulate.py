"""The policy simulator's full comparison: every policy on every built-in trace, one table per trace.

Usage: python bench/simulate.py [--seed N] [--plots DIR]
       python bench/simulate.py --tune [--seeds 1,2,3]   # search the backlog knobs against the table policy

--tune runs `backlog` over a grid of target_drain_s x seconds_per_char x boot_s
on the diurnal and diurnal-spike traces, averaged over seeds, and lists the settings cheaper than `table` at
an equal or better p95 wait on both traces (docs/simulator.md, "Tuned defaults").
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scaler.policy import PolicyConfig  # noqa: E402
from scaler.sim import compare  # noqa: E402
from scaler.sim.model import simulate  # noqa: E402
from scaler.sim.peers import ScalerPeer  # noqa: E402
from scaler.sim.report import duration, summarize, table  # noqa: E402
from scaler.sim.traces import TRACES, get_trace  # noqa: E402

TUNE_TRACES = ("diurnal-spike", "diurnal")
TUNE_GRID = {
    "target_drain_s": (300.0, 600.0, 900.0, 1200.0, 1800.0),
    "seconds_per_char": (0.002, 0.004, 0.008),
    "boot_s": (120.0, 180.0, 300.0),
}


def settings_config() -> PolicyConfig:
    """The PolicyConfig the beat task builds from the SCALER_* settings (defaults unless set)."""
    from scaler.tick import policy_config
    from settings import get_settings

    return policy_config(get_settings())


def comparison(console: Console, seed: int, plots: Path | None) -> None:
    for name in TRACES:
        trace = get_trace(name, seed)
        started = time.perf_counter()
        runs = compare(trace, settings_config(), seed=seed)
        elapsed = time.perf_counter() - started
        console.print(table([summarize(r) for r in runs],
                            f"{name}, seed {seed}: {len(trace.chapters):,} chapters, "
                            f"{trace.total_work_s / 3600:.1f} GPU-hours of work ({elapsed:.1f}s)"))
        if plots is not None:
            from scaler.sim.plot import plot_runs

            plot_runs(runs, plots / f"{name}-seed{seed}.png", f"{name}, seed {seed}")


def averaged(make_peer, config: PolicyConfig, traces: dict, seeds: list[int]) -> dict[str, tuple[float, float]]:  # noqa: ANN001
    """Mean cost and mean p95 wait per trace over the seeds."""
    out = {}
    for name in TUNE_TRACES:
        rows = [summarize(simulate(traces[name, seed], make_peer(config), config, seed=seed)) for seed in seeds]
        out[name] = (mean(r.cost_usd for r in rows), mean(r.wait_p95_s for r in rows))
    return out


def tune(console: Console, seeds: list[int]) -> None:
    base = settings_config()
    traces = {(name, seed): get_trace(name, seed) for name in TUNE_TRACES for seed in seeds}
    reference = averaged(lambda c: ScalerPeer("table", replace(c, policy="table")), base, traces, seeds)
    console.print("table: " + "; ".join(f"{n} ${c:.2f} p95 {duration(p)}" for n, (c, p) in reference.items()))
    candidates = {
        "backlog": lambda c: ScalerPeer("backlog", c),
    }
    for policy, make_peer in candidates.items():
        out = Table(title=f"{policy}: mean over seeds {seeds}; 'meets' = cheaper than table at equal or better p95 "
                          f"on both traces", title_justify="left")
        for header in ("target_drain_s", "seconds_per_char", "boot_s", *(f"{n} {m}" for n in TUNE_TRACES
                                                                          for m in ("USD", "p95")), "meets"):
            out.add_column(header, justify="right")
        results = []
        for drain, spc, boot in itertools.product(*TUNE_GRID.values()):
            config = replace(base, policy="backlog", target_drain_s=drain, seconds_per_char=spc, boot_s=boot)
            result = averaged(make_peer, config, traces, seeds)
            meets = all(result[n][0] < reference[n][0] and result[n][1] <= reference[n][1] for n in TUNE_TRACES)
            results.append((not meets, result["diurnal-spike"][0], drain, spc, boot, result, meets))
        for _, _, drain, spc, boot, result, meets in sorted(results)[:12]:
            out.add_row(f"{drain:g}", f"{spc:g}", f"{boot:g}",
                        *(v for n in TUNE_TRACES for v in (f"{result[n][0]:.2f}", duration(result[n][1]))),
                        "yes" if meets else "no")
        console.print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plots", type=Path, help="also write one PNG per trace into this directory")
    parser.add_argument("--tune", action="store_true", help="search the backlog knobs instead")
    parser.add_argument("--seeds", default="1,2,3", help="seeds averaged by --tune")
    args = parser.parse_args()
    console = Console(width=200)
    if args.tune:
        tune(console, [int(s) for s in args.seeds.split(",")])
    else:
        comparison(console, args.seed, args.plots)


if __name__ == "__main__":
    main()
