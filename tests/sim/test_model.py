"""The simulator end to end on a short trace: every policy, with caps that bind, capacity errors and stuck boots.

The invariants: no cap is ever exceeded, every chapter is done, no chapter is cut off, and the pool is billed
at least for the time it synthesized (cost ratio >= 1).
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from scaler.policy import PolicyConfig
from scaler.sim import PEER_NAMES, compare
from scaler.sim.model import SimConfig, simulate
from scaler.sim.peers import ScalerPeer
from scaler.sim.report import percentile, summarize
from scaler.sim.traces import HOUR, Chapter, Trace, book_chapters, poisson_books

TIGHT = PolicyConfig(max_workers=8, max_usd_per_hour=2.5, max_step=3, idle_s=300)  # 5 x 0.46 > 2.5 > 7 x 0.34
HARSH = SimConfig(capacity_error_rate=0.3, stuck_boot_rate=0.05, boot_s=120)


def short_trace(seed: int) -> Trace:
    """Three hours: a trickle of books, a burst of 200 chapters at 00:30, a quiet hour, a trickle again."""
    rng = random.Random(seed)
    chapters = poisson_books(lambda t: 6.0, 6.0, 0.0, 1 * HOUR, rng)
    chapters += poisson_books(lambda t: 6.0, 6.0, 2 * HOUR, 3 * HOUR, rng, first_book=500)
    for book in range(10):
        chapters += book_chapters(1800.0 + book, 1000 + book, rng, count=20)
    return Trace("short", 3 * HOUR, tuple(sorted(chapters, key=lambda c: c.arrival_s)))


@pytest.mark.parametrize("seed", [2, 3])
def test_every_policy_keeps_the_invariants_on_a_short_trace(seed: int) -> None:
    trace = short_trace(seed)
    runs = compare(trace, TIGHT, HARSH, seed)
    assert [r.peer for r in runs] == list(PEER_NAMES)
    for run in runs:
        row = summarize(run)
        assert row.cap_violations == 0, row.policy
        assert row.chapters_done == row.chapters == len(trace.chapters), row.policy
        assert row.interrupted == 0, row.policy
        assert row.cost_ratio >= 1.0, row.policy
        assert row.max_pods <= TIGHT.max_workers and row.max_usd_per_hour <= TIGHT.max_usd_per_hour + 1e-9
        assert row.max_pods == TIGHT.max_workers or row.max_usd_per_hour > TIGHT.max_usd_per_hour - 0.46, row.policy
        assert all(s.pods <= TIGHT.max_workers for s in run.samples)
        if row.policy != "fixed":  # the autoscalers go back to nothing after the work
            assert run.samples[-1].pods == 0, row.policy
    assert sum(r.capacity_errors for r in runs) > 0  # the faults really happened


def test_a_run_is_reproducible_and_bills_from_create_to_terminate() -> None:
    trace = short_trace(3)
    first = simulate(trace, ScalerPeer("table", TIGHT), TIGHT, HARSH, seed=3)
    again = simulate(trace, ScalerPeer("table", TIGHT), TIGHT, HARSH, seed=3)
    assert summarize(first) == summarize(again)
    row = summarize(first)
    assert row.billed_gpu_h == pytest.approx(sum(p.terminated_at - p.created_at for p in first.pods) / 3600)
    assert row.busy_gpu_h == pytest.approx(trace.total_work_s / 3600)
    assert row.cost_usd == pytest.approx(sum((p.terminated_at - p.created_at) * p.usd_per_hour for p in first.pods)
                                         / 3600)


def test_one_chapter_waits_for_a_boot_and_the_pool_goes_after_the_idle_window() -> None:
    trace = Trace("one", 60.0, (Chapter(10.0, 0, 10_000, 100.0),))
    config = PolicyConfig(idle_s=600)
    world = SimConfig(boot_s=180, boot_jitter=0.0, capacity_error_rate=0.0)
    run = simulate(trace, ScalerPeer("table", config), config, world)
    row = summarize(run)
    # queued at 10 s, seen by the tick at 30 s, booted at 210 s: waited 200 s
    assert row.wait_p50_s == pytest.approx(200.0)
    assert row.creates == 1 and row.busy_gpu_h == pytest.approx(100 / 3600)
    (pod,) = run.pods
    # done at 310 s; last seen pending by the 300 s tick; drained by the 900 s tick, terminated by the next
    assert pod.terminated_at == pytest.approx(930.0)
    assert row.cost_ratio == pytest.approx((930 - 30) / 100)


def test_a_drained_busy_worker_finishes_its_chapter_before_it_goes() -> None:
    # KEDA drains busy workers when pending drops; their chapters must finish, never be cut off.
    trace = Trace("two", 60.0, tuple(Chapter(0.0, 0, 100_000, 1500.0 + i) for i in range(10)))
    config = PolicyConfig(max_workers=10)
    run = compare(trace, config, SimConfig(capacity_error_rate=0.0), policies=("keda",))[0]
    row = summarize(run)
    assert row.interrupted == 0 and row.chapters_done == 10
    assert row.busy_gpu_h == pytest.approx(sum(c.work_s for c in trace.chapters) / 3600)


def test_a_policy_that_plans_over_a_cap_is_held_to_it_and_caught() -> None:
    class Reckless:
        """Asks the real policy with a cap twice the one the world enforces."""

        name, floor = "reckless", 0

        def __init__(self) -> None:
            self.inner = ScalerPeer("table", replace(TIGHT, max_workers=16, max_usd_per_hour=10.0))

        def tick(self, observation, now):  # noqa: ANN001, ANN202
            return self.inner.tick(observation, now)

    run = simulate(short_trace(1), Reckless(), TIGHT, SimConfig(capacity_error_rate=0.0))
    row = summarize(run)
    assert row.refused_creates > 0  # the executor's re-check refused what the policy planned over the caps
    assert row.cap_violations == 0 and row.max_pods <= TIGHT.max_workers  # and the caps held


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 50, 0.0), ([5.0], 95, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([float(i) for i in range(1, 101)], 95, 95.0),
])
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected
