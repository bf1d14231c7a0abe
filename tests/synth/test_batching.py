"""Windows and length-sorted batches (pure), and the assembler that puts rows back in chapter order."""

from __future__ import annotations

import numpy as np
import pytest

from synth.batching import Window, padding_fraction, plan_windows, runs
from synth.render import WindowAssembler, batch_seed


@pytest.mark.parametrize("lengths,max_chars,max_rows,expected", [
    ([10, 10, 10], 30, 8, [(0, 3)]),
    ([10, 10, 10], 20, 8, [(0, 2), (2, 3)]),
    ([50, 5], 20, 8, [(0, 1), (1, 2)]),          # an oversized row still goes alone
    ([3, 3, 3, 3, 3], 100, 2, [(0, 2), (2, 4), (4, 5)]),
    ([], 10, 2, []),
])
def test_runs_are_consecutive_and_bounded(lengths: list[int], max_chars: int, max_rows: int,
                                          expected: list[tuple[int, int]]) -> None:
    assert runs(lengths, max_chars, max_rows) == expected


@pytest.mark.parametrize("lengths,max_chars,max_rows,window_batches,expected", [
    # one window of 4 rows: sorted by length, ties in chapter order
    ([30, 5, 20, 5], 100, 2, 2, [Window(0, 4, ((1, 3), (2, 0)))]),
    # windows of 2 batches x 2 rows = 4 rows: the 5th chunk opens a second window
    ([30, 5, 20, 5, 9], 100, 2, 2, [Window(0, 4, ((1, 3), (2, 0))), Window(4, 5, ((4,),))]),
    # the character limit cuts a sorted batch early; a row longer than the limit goes alone
    ([40, 10, 10, 90], 50, 8, 4, [Window(0, 4, ((1, 2), (0,), (3,)))]),
    # one row per pass: sorting changes only the order of passes
    ([7, 3, 5], 100, 1, 8, [Window(0, 3, ((1,), (2,), (0,)))]),
])
def test_windows_sort_rows_by_length(lengths: list[int], max_chars: int, max_rows: int, window_batches: int,
                                     expected: list[Window]) -> None:
    assert plan_windows(lengths, max_chars, max_rows, window_batches) == expected


@pytest.mark.parametrize("seed", range(5))
def test_windows_cover_every_chunk_once_and_respect_the_limits(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = [int(n) for n in rng.integers(1, 300, size=500)]
    windows = plan_windows(lengths, 2400, 8)
    assert windows[0].start == 0 and windows[-1].end == len(lengths)
    # consecutive, so checkpoints line up
    assert all(a.end == b.start for a, b in zip(windows[:-1], windows[1:], strict=True))
    for window in windows:
        rows = [i for batch in window.batches for i in batch]
        assert sorted(rows) == list(range(window.start, window.end))
        assert [lengths[i] for i in rows] == sorted(lengths[i] for i in rows)
        for batch in window.batches:
            assert len(batch) <= 8 and (len(batch) == 1 or sum(lengths[i] for i in batch) <= 2400)
    # Planning is a pure function of the lengths: a resumed chapter meets the same batches.
    assert plan_windows(lengths, 2400, 8) == windows


def test_sorting_cuts_padding() -> None:
    rng = np.random.default_rng(7)
    lengths = [int(n) for n in rng.lognormal(4.3, 0.6, size=400).clip(5, 300)]
    consecutive = [tuple(range(a, b)) for a, b in runs(lengths, 2400, 8)]
    sorted_batches = [b for w in plan_windows(lengths, 2400, 8) for b in w.batches]
    assert padding_fraction(lengths, sorted_batches) < padding_fraction(lengths, consecutive) / 3
    assert padding_fraction(lengths, [(i,) for i in range(len(lengths))]) == 0.0
    assert padding_fraction([10, 30], [(0, 1)]) == pytest.approx(1 / 3)


def test_assembler_restores_chapter_order_with_head_and_pauses() -> None:
    emitted: list[tuple[Window, list[np.ndarray]]] = []
    rate = 100
    assembler = WindowAssembler(rate, pauses_s=[0.1, 0.2, 0.3, 0.4, 0.5], head_s=0.05,
                                sink=lambda window, blocks: emitted.append((window, blocks)))
    first, second = Window(0, 3, ((2, 0), (1,))), Window(3, 5, ((4, 3),))

    def wave(index: int) -> np.ndarray:  # loud and distinct per chunk, long enough to survive trimming
        return np.full(50, (index + 1) / 10, dtype=np.float32)

    assembler.add(first, (2, 0), [wave(2), wave(0)])
    assert emitted == []  # the window is not complete yet
    assembler.add(first, (1,), [wave(1)])
    assembler.add(second, (4, 3), [wave(4), wave(3)])
    assert [window for window, _ in emitted] == [first, second]
    blocks = emitted[0][1]
    assert blocks[0].size == 5 and not blocks[0].any()  # head silence only before chunk 0
    speech = [b for b in blocks[1:] + emitted[1][1] if b.any()]
    assert [round(float(b.max()), 2) for b in speech] == [0.1, 0.2, 0.3, 0.4, 0.5]
    pauses = [b.size for b in blocks[1:] + emitted[1][1] if not b.any()]
    assert pauses == [10, 20, 30, 40, 50]


def test_batch_seed_depends_on_the_rows_only() -> None:
    assert batch_seed(None, (3, 1)) is None
    assert batch_seed(10, (3, 1)) == batch_seed(10, (1, 3)) == 11
