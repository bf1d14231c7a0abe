"""The peers' pure parts, from tables: KEDA sizing, the fixed fleet, the clairvoyant plan and sizing through the
caps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scaler.policy import GpuOffer, Memory, Observation, PolicyConfig, Worker
from scaler.sim.peers import (
    ClairvoyantPeer,
    clairvoyant_plan,
    fixed_fleet_size,
    keda_desired,
    sized_decision,
)
from scaler.sim.traces import Chapter, Trace

A4000 = GpuOffer("NVIDIA RTX A4000", 0.34)
RTX3090 = GpuOffer("NVIDIA GeForce RTX 3090", 0.46)
NOW = 1_704_100_000.0
CONFIG = PolicyConfig(max_workers=10, max_usd_per_hour=100.0, max_step=10)


def worker(name: str, state: str = "idle", usd: float = 0.34, created_at: float = NOW - 3600, **kw) -> Worker:
    return Worker(name=name, state=state, usd_per_hour=usd, created_at=created_at,  # type: ignore[arg-type]
                  busy=kw.pop("busy", state == "busy"), last_seen_at=None if state == "booting" else NOW, **kw)


def observe(waiting: int, in_flight: int, workers=(), offers=(A4000, RTX3090), **kw) -> Observation:
    return Observation(waiting=waiting, in_flight=in_flight, workers=tuple(workers), offers=tuple(offers), **kw)


@pytest.mark.parametrize(("pending", "target", "desired"), [
    (0, 5, 0), (1, 5, 1), (5, 5, 1), (6, 5, 2), (250, 5, 50), (3, 1, 3),
])
def test_keda_is_ceil_of_pending_over_target(pending: int, target: int, desired: int) -> None:
    assert keda_desired(pending, target, (), NOW)[0] == desired


def test_keda_scales_down_only_after_the_stabilization_window() -> None:
    desired, history = keda_desired(50, 5, (), NOW)
    assert desired == 10
    desired, history = keda_desired(0, 5, history, NOW + 120)
    assert desired == 10  # within 300 s the highest recommendation holds
    desired, history = keda_desired(0, 5, history, NOW + 299)
    assert desired == 10
    desired, history = keda_desired(0, 5, history, NOW + 300)
    assert desired == 0
    assert keda_desired(80, 5, history, NOW + 301)[0] == 16  # scale-up is immediate


def test_the_fixed_fleet_keeps_up_with_the_busiest_hour() -> None:
    chapters = [Chapter(t, 0, 1000, 600.0) for t in (10.0, 20.0, 30.0, 4000.0)]  # 1800 s in hour 0
    assert fixed_fleet_size(Trace("t", 7200.0, tuple(chapters))) == 1
    chapters += [Chapter(100.0, 1, 1000, 3600.0)]  # 5400 s in hour 0
    assert fixed_fleet_size(Trace("t", 7200.0, tuple(sorted(chapters, key=lambda c: c.arrival_s)))) == 2


@pytest.mark.parametrize(("desired", "pool", "config", "creates", "bound"), [
    (3, [], CONFIG, [A4000] * 3, None),
    (30, [], CONFIG, [A4000] * 10, "max_workers"),
    (8, [], replace(CONFIG, max_step=4), [A4000] * 4, "max_step"),
    (9, [worker(f"w{i}") for i in range(8)], CONFIG, [A4000], None),  # serving 8 -> 9
    # mixed prices under a USD cap: 0.34 + 0.34 fit 0.90, then nothing (0.68 + 0.34 > 0.90, 0.68 + 0.46 > 0.90)
    (5, [], replace(CONFIG, max_usd_per_hour=0.90), [A4000, A4000], "max_usd_per_hour"),
    # draining workers count against the caps but do not serve
    (3, [worker(f"d{i}", "draining", busy=True, consuming=False) for i in range(9)], CONFIG, [A4000], "max_workers"),
])
def test_sized_decision_creates_within_every_cap(desired, pool, config, creates, bound) -> None:  # noqa: ANN001
    decision, _ = sized_decision("p", desired, observe(10, 0, pool), config, Memory(), NOW)
    assert [(c.gpu_type, c.usd_per_hour) for c in decision.create] == [(o.gpu_type, o.usd_per_hour) for o in creates]
    assert decision.bound_by == bound
    assert len(pool) + len(decision.create) <= config.max_workers
    usd = sum(w.usd_per_hour for w in pool) + sum(c.usd_per_hour for c in decision.create)
    assert usd <= config.max_usd_per_hour + 1e-9


def test_sized_decision_offers_the_dearer_type_when_only_it_fits_after_a_backoff() -> None:
    decision, _ = sized_decision("p", 2, observe(5, 0, offers=(RTX3090,)), CONFIG, Memory(), NOW)
    assert [c.gpu_type for c in decision.create] == [RTX3090.gpu_type] * 2


def test_sized_decision_removes_booting_then_idle_and_busy_only_when_asked() -> None:
    pool = [worker("busy", "busy"), worker("idle"), worker("boot", "booting", created_at=NOW - 30)]
    decision, _ = sized_decision("p", 1, observe(0, 1, pool), CONFIG, Memory(), NOW)
    assert decision.terminate == ("boot",) and decision.drain == ("idle",)
    decision, _ = sized_decision("p", 0, observe(0, 1, pool), CONFIG, Memory(), NOW)
    assert "busy" not in decision.drain + decision.terminate
    decision, _ = sized_decision("p", 0, observe(0, 1, pool), CONFIG, Memory(), NOW, drain_busy=True)
    assert set(decision.drain) == {"idle", "busy"} and decision.terminate == ("boot",)


def test_sized_decision_reconciles_drained_and_stuck_workers() -> None:
    pool = [worker("done", "draining", consuming=False), worker("still", "draining", busy=True, consuming=False),
            worker("stuck", "booting", created_at=NOW - 2000)]
    decision, _ = sized_decision("p", 0, observe(0, 1, pool), CONFIG, Memory(), NOW)
    assert set(decision.terminate) == {"done", "stuck"}
    assert "still" not in decision.terminate + decision.drain


def test_sized_decision_spends_the_daily_budget_then_scales_toward_the_minimum() -> None:
    config = replace(CONFIG, daily_budget_usd=1.0, min_workers=1)
    pool = [worker(f"w{i}", "busy", usd=1.0) for i in range(3)]
    memory = Memory(day="2024-01-01", spent_today_usd=0.9, accounted_at=NOW - 120, usd_per_hour=3.0)
    decision, memory = sized_decision("p", 6, observe(20, 3, pool), config, memory, NOW)
    assert memory.spent_today_usd == pytest.approx(0.9 + 3.0 * 120 / 3600)
    assert decision.bound_by == "daily_budget" and decision.create == ()
    assert len(decision.drain) == 2  # busy ones too, through a drain: down to the one kept warm


def test_a_failed_read_holds() -> None:
    decision, _ = sized_decision("p", None, observe(0, 0, [worker("w")]), CONFIG, Memory(), NOW)
    assert decision.held and decision.create == decision.drain == decision.terminate == ()


def chapters(*rows: tuple[float, float]) -> list[Chapter]:
    return [Chapter(arrival, 1, 1000, work) for arrival, work in rows]


def test_the_clairvoyant_packs_chapters_onto_one_pod_while_each_starts_within_the_wait() -> None:
    # Three 100 s chapters at once, a 250 s wait allowed: one pod does all three (the third starts at 200 s).
    plan = clairvoyant_plan(chapters((0, 100), (0, 100), (0, 100)), pods=10, wait_s=250, boot_s=180, interval_s=30)
    assert plan == ((-210, 300),)  # created one boot and one tick ahead, released when its last chapter ends
    # The same with a 150 s wait: the third cannot wait 200 s, so a second pod comes for it.
    plan = clairvoyant_plan(chapters((0, 100), (0, 100), (0, 100)), pods=10, wait_s=150, boot_s=180, interval_s=30)
    assert plan == ((-210, 100), (-210, 200))


def test_the_clairvoyant_keeps_a_pod_through_a_short_gap_and_boots_anew_after_a_long_one() -> None:
    short = clairvoyant_plan(chapters((0, 100), (250, 100)), pods=10, wait_s=0, boot_s=180, interval_s=30)
    assert short == ((-210, 350),)  # idle 150 s < a boot: kept
    long = clairvoyant_plan(chapters((0, 100), (400, 100)), pods=10, wait_s=0, boot_s=180, interval_s=30)
    assert long == ((-210, 100), (190, 500))  # idle 300 s > a boot: released, a new pod for the next


def test_the_clairvoyant_never_plans_more_pods_than_the_caps_allow() -> None:
    plan = clairvoyant_plan(chapters(*[(0, 100)] * 6), pods=2, wait_s=0, boot_s=180, interval_s=30)
    assert len(plan) == 2 and max(end for _, end in plan) == 300  # two pods, three chapters each, back to back


def test_the_clairvoyant_asks_for_the_pods_its_plan_holds_at_each_tick() -> None:
    peer = ClairvoyantPeer(CONFIG, ((-210, 100), (-210, 200)), epoch=NOW)
    sizes = [peer.tick(observe(waiting=0, in_flight=0), NOW + t).desired for t in (-300, -210, 0, 150, 250)]
    assert sizes == [0, 2, 2, 1, 0]
