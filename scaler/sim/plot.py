"""One PNG per comparison: queue depth, pods and USD/hour over the day, one line per policy.

matplotlib is an optional dependency (the `sim` extra); it is imported here only, with the Agg backend,
so the simulator itself and the CLI's table need no display and no plotting library.
"""

from __future__ import annotations

from pathlib import Path

from scaler.sim.model import Run
from scaler.sim.report import duration, summarize

#: Colour-blind-safe (Okabe-Ito), one per policy in the order of the comparison.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#555555", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


def plot_runs(runs: list[Run], path: Path, title: str) -> Path:
    """Draw `runs` (same trace) into `path` and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (queue, pods, usd) = plt.subplots(3, 1, figsize=(13, 10), sharex=True, layout="constrained")
    for index, run in enumerate(runs):
        hours = [s.t / 3600.0 for s in run.samples]
        row = summarize(run)
        label = f"{run.peer}: ${row.cost_usd:.0f}, wait p95 {duration(row.wait_p95_s)}"
        style = {"color": COLOURS[index % len(COLOURS)], "linewidth": 1.3, "where": "post", "label": label,
                 "alpha": 0.9}
        queue.step(hours, [s.waiting for s in run.samples], **style)
        pods.step(hours, [s.pods for s in run.samples], **style)
        usd.step(hours, [s.usd_per_hour for s in run.samples], **style)
    if runs:
        config = runs[0].policy_config
        usd_cap = config.max_usd_per_hour
        for axis, cap, label in ((pods, config.max_workers, f"SCALER_MAX_WORKERS {config.max_workers}"),
                                 (usd, usd_cap, f"SCALER_MAX_USD_PER_HOUR {usd_cap:g}")):
            axis.axhline(cap, color="black", linestyle="--", linewidth=1)
            axis.annotate(label, xy=(0.995, cap), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                          fontsize=9)
            axis.set_ylim(0, cap * 1.12)
    queue.set_yscale("symlog", linthresh=10)
    queue.set_ylabel("chapters waiting\n(log above 10)")
    pods.set_ylabel("pods (booting,\nbusy, idle, draining)")
    usd.set_ylabel("USD per hour")
    usd.set_xlabel("hours since 00:00 UTC")
    end = max((run.samples[-1].t / 3600.0 for run in runs if run.samples), default=24.0)
    usd.set_xlim(0, end)
    usd.set_xticks(range(0, int(end) + 1, 2))
    for axis in (queue, pods, usd):
        axis.grid(True, alpha=0.3)
    queue.set_ylim(bottom=0)
    figure.suptitle(title, fontsize=13)
    figure.legend(*queue.get_legend_handles_labels(), loc="outside lower center", ncols=min(len(runs), 3) or 1,
                  fontsize=10, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
