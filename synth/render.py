"""The model loop: every batch through the engine in this thread, everything else on a stage beside it.

Batches arrive in length order; the assembler post-processes each row (trim, fades) on the stage and
hands a window on once all its rows are back, in chapter order with the pauses between chunks. Nothing
here touches files or storage, so benchmarks (bench/gpu_check.py) run the same loop as a chapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from synth.audio import fade_edges, silence, trim_silence
from synth.batching import Rows, Window
from synth.engines.base import Engine
from synth.pipeline import Stage

#: Receives a finished window's audio blocks, in chapter order (on the stage's thread).
WindowSink = Callable[[Window, list[np.ndarray]], None]


class WindowAssembler:
    """Collects the rows of a window and passes the window on, in chapter order, once all are back."""

    def __init__(self, sample_rate: int, pauses_s: Sequence[float], head_s: float, sink: WindowSink) -> None:
        self.sample_rate = sample_rate
        self.pauses_s = pauses_s
        self.head_s = head_s
        self.sink = sink
        self._rows: dict[int, np.ndarray] = {}

    def add(self, window: Window, rows: Rows, waves: Sequence[np.ndarray]) -> None:
        """Take one batch's waves (row i of `rows` is chunk rows[i]); emit the window when complete."""
        for index, wave in zip(rows, waves, strict=True):
            self._rows[index] = fade_edges(trim_silence(wave, self.sample_rate), self.sample_rate)
        if all(i in self._rows for i in range(window.start, window.end)):
            blocks = [silence(self.head_s, self.sample_rate)] if window.start == 0 else []
            for index in range(window.start, window.end):
                blocks += [self._rows.pop(index), silence(self.pauses_s[index], self.sample_rate)]
            self.sink(window, blocks)


@dataclass
class RenderStats:
    """Time spent inside the engine (tokenize, forward pass, copy back), and the work done."""

    model_s: float = 0.0
    batches: int = 0
    rows: int = 0


def batch_seed(seed: int | None, rows: Rows) -> int | None:
    """A batch's seed depends only on which chunks it holds, so a resumed chapter draws the same noise."""
    return None if seed is None else seed + min(rows)


def render(engine: Engine, texts: Sequence[str], windows: Sequence[Window], stage: Stage,
           assembler: WindowAssembler, *, voice: str | None = None, seed: int | None = None,
           on_batch: Callable[[int], None] | None = None, stop: Callable[[], bool] | None = None,
           clock: Callable[[], float] = time.perf_counter) -> RenderStats:
    """Run `windows` through `engine`, handing each batch to `assembler` on `stage`; `on_batch` gets the
    rows rendered so far after each pass; `stop` is asked after each window (a pause ends on a window
    boundary, where a checkpoint can be cut). The caller joins the stage."""
    stats = RenderStats()
    for window in windows:
        for rows in window.batches:
            before = clock()
            waves = engine.synthesize([texts[i] for i in rows], voice=voice, seed=batch_seed(seed, rows))
            stats.model_s += clock() - before
            stats.batches += 1
            stats.rows += len(rows)
            stage.submit(assembler.add, window, rows, waves)
            if on_batch is not None:
                on_batch(stats.rows)
        if stop is not None and stop():
            break
    return stats
