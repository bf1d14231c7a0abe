"""Book estimates before submission: pure functions, checked from tables."""

from __future__ import annotations

import pytest

from scaler.estimate import EstimateInputs, estimate_book, makespan, workers_at_cap


@pytest.mark.parametrize("durations,workers,expected", [
    ([], 3, 0.0),
    ([10.0], 5, 10.0),
    ([10.0, 10.0, 10.0], 1, 30.0),
    ([10.0, 10.0, 10.0], 3, 10.0),
    ([7.0, 5.0, 4.0, 3.0, 1.0], 2, 10.0),  # longest first: 7+3 / 5+4+1
    ([8.0, 1.0, 1.0, 1.0, 1.0], 4, 8.0),  # one long chapter bounds the book
])
def test_makespan_longest_first(durations: list[float], workers: int, expected: float) -> None:
    assert makespan(durations, workers) == pytest.approx(expected)


@pytest.mark.parametrize("max_workers,max_usd,price,expected", [
    (50, 25.0, 0.34, 50), (50, 25.0, 1.0, 25), (50, 25.0, 0.0, 50), (50, 25.0, None, 50), (10, 0.5, 1.0, 1),
])
def test_pool_size_the_caps_allow(max_workers: int, max_usd: float, price: float | None, expected: int) -> None:
    assert workers_at_cap(max_workers, max_usd, price) == expected


def test_estimate_of_a_book() -> None:
    inputs = EstimateInputs(gpu_seconds_per_char=0.004, spoken_seconds_per_char=0.07, usd_per_hour=0.5,
                            workers=2, max_workers=4, queued_gpu_s=40.0, boot_s=180.0)
    estimate = estimate_book([10_000, 5_000, 5_000], inputs)
    assert estimate.characters == 20_000
    assert estimate.audio_s == pytest.approx(1400.0)
    assert estimate.gpu_s == pytest.approx(80.0) and estimate.gpu_hours == pytest.approx(80 / 3600)
    assert estimate.usd == pytest.approx(80 / 3600 * 0.5)
    assert estimate.wall_s_now == pytest.approx(40 / 2 + 40.0)  # queue shared, then 40 | 20+20
    assert estimate.wall_s_at_cap == pytest.approx(40 / 4 + 40.0)
    assert estimate.chapter_gpu_s == pytest.approx((40.0, 20.0, 20.0))


def test_an_empty_or_unknown_pool_and_an_unknown_price() -> None:
    inputs = EstimateInputs(gpu_seconds_per_char=0.01, spoken_seconds_per_char=0.07, usd_per_hour=None,
                            workers=None, max_workers=3, boot_s=120.0)
    estimate = estimate_book([1000, 1000], inputs)
    assert estimate.usd is None and estimate.wall_s_now is None
    assert estimate.wall_s_at_cap == pytest.approx(120.0 + 10.0)  # workers boot first
    empty = estimate_book([1000], EstimateInputs(0.01, 0.07, 1.0, workers=0, max_workers=3, boot_s=120.0))
    assert empty.wall_s_now is None and empty.wall_s_at_cap == pytest.approx(130.0)
