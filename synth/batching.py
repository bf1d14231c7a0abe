"""Which chunks share a forward pass: windows of consecutive chunks, sorted by length inside each window.

A padded batch spends compute on its padding, so rows of similar length go together; sorting a whole
chapter would scatter every checkpoint across it, so sorting stays inside a window of consecutive chunks,
and the window is the unit a checkpoint ends on. Windows are always planned from chunk 0 with the same
rules, so a resumed chapter meets the same batches, and so the same audio, as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Batches per window: enough rows to sort into well-matched batches, few enough that a window is a
#: small part of a chapter (resume granularity, and the audio held until a window is complete).
WINDOW_BATCHES = 8

Span = tuple[int, int]
Rows = tuple[int, ...]


@dataclass(frozen=True)
class Window:
    """Chunks [start, end); `batches` are its forward passes, each a tuple of chunk indices."""

    start: int
    end: int
    batches: tuple[Rows, ...]


def runs(lengths: Sequence[int], max_chars: int, max_rows: int) -> list[Span]:
    """Consecutive [start, end) runs of at most `max_rows` rows and `max_chars` characters (a longer row
    goes alone); always from 0, so resumes line up."""
    spans, start, chars = [], 0, 0
    for i, size in enumerate(lengths):
        if i > start and (chars + size > max_chars or i - start >= max_rows):
            spans.append((start, i))
            start, chars = i, 0
        chars += size
    if start < len(lengths):
        spans.append((start, len(lengths)))
    return spans


def plan_windows(lengths: Sequence[int], max_chars: int, max_rows: int,
                 window_batches: int = WINDOW_BATCHES) -> list[Window]:
    """Windows of up to `window_batches` batches' worth of chunks; inside each, batches of chunks taken
    in order of length, each at most `max_rows` rows and `max_chars` characters."""
    windows = []
    for start, end in runs(lengths, max_chars * window_batches, max_rows * window_batches):
        order = sorted(range(start, end), key=lambda i: (lengths[i], i))
        sorted_lengths = [lengths[i] for i in order]
        batches = tuple(tuple(order[a:b]) for a, b in runs(sorted_lengths, max_chars, max_rows))
        windows.append(Window(start, end, batches))
    return windows


def padding_fraction(lengths: Sequence[int], batches: Sequence[Rows]) -> float:
    """Share of the batches' padded cells (rows x longest row) that are padding."""
    cells = sum(len(rows) * max(lengths[i] for i in rows) for rows in batches if rows)
    used = sum(lengths[i] for rows in batches for i in rows)
    return 0.0 if cells == 0 else 1.0 - used / cells
