"""Metrics of a run, one row per policy, as a rich table or JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table

from scaler.sim.model import Run


@dataclass(frozen=True)
class Row:
    """What one policy cost and how long chapters waited. Times in seconds, money in USD."""

    policy: str
    billed_gpu_h: float  # pods from create to terminate
    busy_gpu_h: float  # pods synthesizing a chapter
    cost_ratio: float  # billed / busy: 1.0 is a pool that is never idle, booting or draining
    cost_usd: float
    wait_p50_s: float  # chapter queued -> chapter started
    wait_p95_s: float
    wait_max_s: float
    makespan_s: float  # first chapter queued -> last chapter done
    max_pods: int
    max_usd_per_hour: float
    cap_violations: int  # instants with our pods over a cap: must be 0
    refused_creates: int  # creates the executor's re-check refused: a policy that needs it has a bug
    creates: int  # pod churn
    chapters: int
    chapters_done: int
    interrupted: int  # chapters cut off by a terminate: must be 0
    capacity_errors: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultRow:
    """One policy through a fault storm. The five violation counts must be 0."""

    policy: str
    ticks: int
    faults: int  # faults injected, all kinds
    max_pods: int
    max_workers: int  # the cap
    max_usd_per_hour: float
    usd_cap: float
    over_caps: int  # instants with our pods over either cap
    busy_terminated: int
    foreign_touched: int
    unknown_after: int  # our pods the scaler does not know, 2 ticks after the faults stopped
    refused_creates: int  # creates the executor's re-check refused (a policy planning over a cap)
    held: int  # ticks held on a failed or lying read
    crash_loop_ticks: int
    chapters: int  # arrived during the run
    chapters_done: int
    fault_counts: dict[str, int]

    @property
    def violations(self) -> int:
        return (self.over_caps + self.busy_terminated + self.foreign_touched + self.unknown_after
                + self.refused_creates)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"violations": self.violations}


def summarize_faults(run: Run) -> FaultRow:
    cloud = run.cloud
    end = run.ended_at
    return FaultRow(
        policy=run.peer, ticks=run.decisions, faults=sum(cloud.faults.values()), max_pods=cloud.max_pods,
        max_workers=run.policy_config.max_workers, max_usd_per_hour=round(cloud.max_usd_per_hour, 4),
        usd_cap=run.policy_config.max_usd_per_hour, over_caps=run.cap_violations, busy_terminated=cloud.busy_terminated,
        foreign_touched=cloud.foreign_touched, unknown_after=run.unknown_after_faults or 0,
        refused_creates=run.refused_creates, held=run.held, crash_loop_ticks=run.crash_loop_ticks,
        chapters=sum(1 for c in run.trace.chapters if c.arrival_s <= end),
        chapters_done=sum(1 for t in run.done_at if t is not None), fault_counts=dict(sorted(cloud.faults.items())))


def fault_table(rows: list[FaultRow], title: str) -> Table:
    """The fault storm as a rich table: the caps at every instant and what must never happen."""
    out = Table(title=title, title_justify="left")
    for header in ("policy", "ticks", "faults", "max pods / cap", "max USD/h / cap", "over a cap", "busy killed",
                   "foreign touched", "unknown after", "refused creates", "held ticks", "crash-loop ticks",
                   "chapters done"):
        out.add_column(header, justify="left" if header == "policy" else "right")
    for row in rows:
        out.add_row(row.policy, f"{row.ticks:,}", f"{row.faults:,}", f"{row.max_pods} / {row.max_workers}",
                    f"{row.max_usd_per_hour:.2f} / {row.usd_cap:.2f}", str(row.over_caps), str(row.busy_terminated),
                    str(row.foreign_touched), str(row.unknown_after), str(row.refused_creates), f"{row.held:,}",
                    f"{row.crash_loop_ticks:,}", f"{row.chapters_done:,} / {row.chapters:,}")
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(run: Run) -> Row:
    billed_s = sum(((p.terminated_at if p.terminated_at is not None else run.ended_at) - p.created_at)
                   for p in run.pods)
    cost = sum(((p.terminated_at if p.terminated_at is not None else run.ended_at) - p.created_at)
               * p.usd_per_hour / 3600.0 for p in run.pods)
    waits = sorted(start - chapter.arrival_s
                   for start, chapter in zip(run.first_start, run.trace.chapters, strict=True) if start is not None)
    done = [t for t in run.done_at if t is not None]
    first = run.trace.chapters[0].arrival_s if run.trace.chapters else 0.0
    return Row(
        policy=run.peer,
        billed_gpu_h=billed_s / 3600.0,
        busy_gpu_h=run.busy_s / 3600.0,
        cost_ratio=billed_s / run.busy_s if run.busy_s > 0 else (math.inf if billed_s > 0 else 1.0),
        cost_usd=cost,
        wait_p50_s=percentile(waits, 50),
        wait_p95_s=percentile(waits, 95),
        wait_max_s=waits[-1] if waits else 0.0,
        makespan_s=(max(done) - first) if done else 0.0,
        max_pods=run.cloud.max_pods,
        max_usd_per_hour=run.cloud.max_usd_per_hour,
        cap_violations=run.cap_violations,
        refused_creates=run.refused_creates,
        creates=len(run.pods),
        chapters=len(run.trace.chapters),
        chapters_done=len(done),
        interrupted=run.interrupted,
        capacity_errors=run.capacity_errors,
    )


def duration(seconds: float) -> str:
    """Seconds for a person: 42s, 7m05s, 3h12m."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def table(rows: list[Row], title: str) -> Table:
    """The comparison as a rich table: one row per policy."""
    out = Table(title=title, title_justify="left")
    for header in ("policy", "billed GPU-h", "busy GPU-h", "billed/busy", "cost USD", "wait p50", "wait p95",
                   "wait max", "makespan", "max pods", "max USD/h", "cap viol.", "creates"):
        out.add_column(header, justify="left" if header == "policy" else "right")
    for row in rows:
        done = "" if row.chapters_done == row.chapters else f" ({row.chapters - row.chapters_done} not done)"
        out.add_row(row.policy + done, f"{row.billed_gpu_h:.1f}", f"{row.busy_gpu_h:.1f}", f"{row.cost_ratio:.2f}",
                    f"{row.cost_usd:.2f}", duration(row.wait_p50_s), duration(row.wait_p95_s),
                    duration(row.wait_max_s), duration(row.makespan_s), str(row.max_pods),
                    f"{row.max_usd_per_hour:.2f}", str(row.cap_violations), str(row.creates))
    return out
