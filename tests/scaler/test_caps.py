"""Spend caps: the pure checks, and the policy when a cap binds in the middle of a scale-up."""

from __future__ import annotations

import pytest

from scaler import caps
from scaler.policy import GpuOffer, Memory, Observation, PolicyConfig, Worker, decide

A4000 = GpuOffer("NVIDIA RTX A4000", 0.34)
RTX3090 = GpuOffer("NVIDIA GeForce RTX 3090", 0.22)
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def pod(name: str, usd: float, state: str = "idle", **kw) -> Worker:
    return Worker(name=name, state=state, usd_per_hour=usd, created_at=NOW - 600,  # type: ignore[arg-type]
                  last_seen_at=None if state == "booting" else NOW, **kw)


@pytest.mark.parametrize(("now", "price", "cap", "fits"), [
    (0.0, 0.34, 0.34, True), (0.0, 0.35, 0.34, False), (0.68, 0.22, 0.90, True),
    (0.34 + 0.34 + 0.22, 0.0, 0.90, True), (0.90, 0.01, 0.90, False), (0.0, 0.0, 0.0, True),
])
def test_fits_usd_cap(now: float, price: float, cap: float, fits: bool) -> None:
    assert caps.fits_usd_cap(now, price, cap) is fits


@pytest.mark.parametrize(("counted", "max_workers", "room"), [(0, 5, 5), (5, 5, 0), (7, 5, 0), (3, 50, 47)])
def test_worker_headroom(counted: int, max_workers: int, room: int) -> None:
    assert caps.worker_headroom(counted, max_workers) == room


def test_usd_cap_binds_mid_scale_up_with_mixed_prices() -> None:
    # Preferred A4000 at 0.34, fallback 3090 at 0.22, cap 1.00: two A4000 (0.68), then only a 3090 fits
    # (0.90), then nothing (0.90 + 0.22 > 1.00).
    config = PolicyConfig(max_usd_per_hour=1.00, max_step=10)
    obs = Observation(waiting=100, in_flight=0, offers=(A4000, RTX3090))
    decision, _ = decide(obs, config, Memory(), NOW)
    assert [c.gpu_type for c in decision.create] == [A4000.gpu_type, A4000.gpu_type, RTX3090.gpu_type]
    assert decision.bound_by == "max_usd_per_hour"
    assert decision.usd_per_hour_planned == pytest.approx(0.90)
    # each create carries only fallbacks that still fit at its place in the sequence
    assert decision.create[0].fallbacks == (RTX3090,)
    assert decision.create[2].fallbacks == ()


def test_usd_cap_counts_booting_and_draining_pods() -> None:
    pool = [pod("boot", 0.34, "booting"), pod("drain", 0.34, "draining", consuming=False, busy=True),
            pod("req", 0.22, "booting", requested=True)]
    config = PolicyConfig(max_usd_per_hour=1.20, max_step=10)
    decision, _ = decide(Observation(waiting=100, in_flight=1, workers=tuple(pool), offers=(A4000, RTX3090)),
                         config, Memory(), NOW)
    assert decision.usd_per_hour == pytest.approx(0.90)
    assert [c.gpu_type for c in decision.create] == [RTX3090.gpu_type]  # 0.90 + 0.34 > 1.20, + 0.22 fits
    assert decision.usd_per_hour_planned <= 1.20


def test_max_workers_counts_booting_draining_and_requested() -> None:
    pool = [pod("b1", 0.1, "booting"), pod("b2", 0.1, "booting", requested=True),
            pod("d1", 0.1, "draining", consuming=False, busy=True), pod("i1", 0.1)]
    config = PolicyConfig(max_workers=5, max_usd_per_hour=100)
    decision, _ = decide(Observation(waiting=300, in_flight=0, workers=tuple(pool), offers=(A4000,)),
                         config, Memory(), NOW)
    assert len(decision.create) == 1
    assert "max_workers" in decision.caps_hit
    assert decision.target == 5


def test_over_the_usd_cap_sheds_idle_workers_dearest_first_without_waiting() -> None:
    pool = [pod("cheap", 0.22), pod("dear", 0.69), pod("mid", 0.34), pod("busy", 0.69, "busy", busy=True)]
    config = PolicyConfig(max_usd_per_hour=1.30, idle_s=10_000)
    decision, _ = decide(Observation(waiting=40, in_flight=1, workers=tuple(pool), offers=(A4000,)),
                         config, Memory(last_nonempty_at=NOW), NOW)
    assert decision.drain == ("dear",)  # 1.94 -> 1.25
    assert decision.create == ()


def test_daily_budget_scales_toward_the_minimum_and_says_so() -> None:
    config = PolicyConfig(daily_budget_usd=10.0, min_workers=1, idle_s=10_000)
    pool = [pod("a", 0.5), pod("b", 0.5, "busy", busy=True), pod("c", 0.3)]
    memory = Memory(last_nonempty_at=NOW, day=caps.utc_day(NOW), spent_today_usd=9.9, accounted_at=NOW - 360)
    decision, new_memory = decide(Observation(waiting=30, in_flight=1, workers=tuple(pool), offers=(A4000,)),
                                  config, memory, NOW)
    assert new_memory.spent_today_usd == pytest.approx(10.03)  # 1.3 $/h for 6 minutes = 0.13
    assert decision.bound_by == "daily_budget" and decision.target == 1
    assert decision.create == ()
    assert decision.drain == ("a", "c")  # busy "b" finishes its chapter and stays as the minimum
    assert "budget" in decision.reason


def test_daily_budget_not_reached_does_not_bind() -> None:
    config = PolicyConfig(daily_budget_usd=10.0)
    memory = Memory(day=caps.utc_day(NOW), spent_today_usd=5.0, accounted_at=NOW - 60)
    decision, _ = decide(Observation(waiting=5, in_flight=0, offers=(A4000,)), config, memory, NOW)
    assert decision.bound_by is None and len(decision.create) == 1


@pytest.mark.parametrize(("day", "spent", "accounted_at", "rate", "now", "expect_day", "expect_spent"), [
    ("1970-01-01", 0.0, None, 3.0, 3600.0, "1970-01-01", 0.0),  # first tick charges nothing
    ("1970-01-01", 1.0, 0.0, 3.0, 3600.0, "1970-01-01", 4.0),  # an hour at 3 $/h
    ("1970-01-01", 5.0, 86_400 - 1800, 2.0, 86_400 + 1800, "1970-01-02", 1.0),  # restarts at UTC midnight
    ("1970-01-01", 5.0, 10.0, 2.0, 10.0, "1970-01-01", 5.0),
])
def test_accrue_spend(day, spent, accounted_at, rate, now, expect_day, expect_spent) -> None:
    assert caps.accrue_spend(day, spent, accounted_at, rate, now) == (expect_day, pytest.approx(expect_spent))


def test_budget_exhausted() -> None:
    assert not caps.budget_exhausted(100.0, None)
    assert caps.budget_exhausted(10.0, 10.0)
    assert not caps.budget_exhausted(9.99, 10.0)
