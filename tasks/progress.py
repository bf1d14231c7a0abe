"""Live terminal progress of one book (rich): chapter bars, counts, the pool and the scaler's last decision."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from tasks.bookstatus import BookStatus

PoolSnapshot = Callable[[], dict[str, Any]]


def pool_snapshot(app, settings) -> PoolSnapshot:  # noqa: ANN001
    """Workers by state and the last decision record, read from the scaler's Redis state."""
    from scaler.tick import state_store

    store = state_store(app, settings)

    def snapshot() -> dict[str, Any]:
        try:
            records = store.records(1)
        except Exception as exc:  # noqa: BLE001 - the display must not die with Redis hiccups
            return {"error": str(exc)}
        if not records:
            return {"workers": {}, "decision": None}
        record = records[0]
        states = Counter(record.observation.states if record.observation else {})
        decision = record.decision
        return {"workers": states, "health": record.health,
                "decision": {"target": decision.target, "reason": decision.reason,
                             "usd_per_hour": decision.usd_per_hour} if decision else None}

    return snapshot


def _eta(status: BookStatus, elapsed: float) -> str:
    fraction = status.fraction
    if status.finished:
        return "done"
    if fraction <= 0.02:
        return "estimating"
    return f"{elapsed * (1 - fraction) / fraction:,.0f} s"


def render(status: BookStatus, pool: dict[str, Any] | None, elapsed: float) -> Group:
    bars = Progress(TextColumn("{task.description}", justify="left"), BarColumn(bar_width=30),
                    TaskProgressColumn(), TextColumn("{task.fields[note]}"), expand=False)
    from tasks.poolhealth import waiting_reason

    waiting = waiting_reason((pool or {}).get("health"))
    for chapter in status.chapters:
        if waiting and chapter.phase in ("queued", "running"):
            bars.add_task(f"{chapter.chapter_id} {chapter.title or ''}"[:36], total=max(chapter.total, 1),
                          completed=chapter.done, note=waiting)
            continue
        note = {"queued": "queued", "running": chapter.worker or "running",
                "done": f"{chapter.duration_s or 0:.1f} s audio", "failed": chapter.error or "failed",
                "cancelled": "cancelled"}[chapter.phase]
        bars.add_task(f"{chapter.chapter_id} {chapter.title or ''}"[:36], total=max(chapter.total, 1),
                      completed=chapter.total if chapter.phase == "done" else chapter.done, note=note)
    counts = status.counts
    summary = Table.grid(padding=(0, 2))
    summary.add_row(f"[bold]{status.title or status.book_id}[/]",
                    f"queued {counts.get('queued', 0)}", f"running {counts.get('running', 0)}",
                    f"done {counts.get('done', 0)}", f"failed {counts.get('failed', 0)}",
                    *([f"cancelled {counts['cancelled']}"] if counts.get("cancelled") else []),
                    f"assembly {status.assembly_state.lower()}", f"elapsed {elapsed:,.0f} s",
                    f"ETA {_eta(status, elapsed)}")
    parts: list[Any] = [summary, bars]
    if pool is not None:
        if "error" in pool:
            parts.append(f"[yellow]pool: unavailable ({pool['error']})[/]")
        else:
            workers = pool.get("workers") or {}
            shown = ", ".join(f"{state} {n}" for state, n in sorted(workers.items())) or "none"
            decision = pool.get("decision") or {}
            line = f"pool: {shown}"
            if decision:
                line += (f" | last decision: target {decision.get('target')} ({decision.get('reason')})"
                         f" | USD/hour {float(decision.get('usd_per_hour') or 0):.2f}")
            parts.append(line)
    return Group(*parts)


def follow(read_status: Callable[[], BookStatus | None], pool: PoolSnapshot | None = None,
           console: Console | None = None, interval: float = 0.5, timeout: float | None = None) -> BookStatus:
    """Redraw until the book's assembly has finished (or failed); returns the last status."""
    console = console or Console()
    started = time.monotonic()
    status = read_status()
    if status is None:
        raise LookupError("no such book")
    with Live(render(status, pool() if pool else None, 0), console=console, refresh_per_second=4,
              transient=False) as live:
        while not status.finished:
            if timeout is not None and time.monotonic() - started > timeout:
                raise TimeoutError(f"book {status.book_id} did not finish within {timeout:.0f} s")
            time.sleep(interval)
            status = read_status() or status
            live.update(render(status, pool() if pool else None, time.monotonic() - started))
    console.line()  # what is printed next starts on a line of its own
    return status
