"""The pure policy, from tables, with an injected clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaler.policy import (
    TABLE_BANDS,
    GpuOffer,
    Memory,
    Observation,
    PolicyConfig,
    Worker,
    backlog_workers,
    decide,
    table_workers,
)

A4000 = GpuOffer("NVIDIA RTX A4000", 0.34)
RTX3090 = GpuOffer("NVIDIA GeForce RTX 3090", 0.22)
CHEAP = GpuOffer("cheap", 0.01)
NOW = 1_000_000.0


def worker(name: str, state: str = "idle", usd: float = 0.3, created_at: float = NOW - 3600, **kw) -> Worker:
    seen = kw.pop("last_seen_at", None if state == "booting" else NOW)
    return Worker(name=name, state=state, usd_per_hour=usd, created_at=created_at, last_seen_at=seen,  # type: ignore[arg-type]
                  busy=kw.pop("busy", state == "busy"), **kw)


def observe(waiting: int | None = 0, in_flight: int | None = 0, workers=(), offers=(CHEAP,), **kw) -> Observation:
    return Observation(waiting=waiting, in_flight=in_flight, workers=tuple(workers), offers=tuple(offers), **kw)


BIG = PolicyConfig(max_workers=100, max_usd_per_hour=1000.0, max_step=100)


@pytest.mark.parametrize(("pending", "workers"), [
    (0, 0), (1, 1), (2, 1), (10, 1),
    (11, 2), (12, 3), (24, 3), (37, 4), (50, 5),
    (51, 5), (52, 6), (100, 10), (200, 20),
    (201, 20), (202, 21), (400, 40), (499, 50), (500, 50),
    (501, 50), (10_000, 50),
])
def test_table_mapping_at_every_band_boundary(pending: int, workers: int) -> None:
    assert table_workers(pending) == workers


def test_table_is_monotonic_and_stays_inside_each_band() -> None:
    previous = 0
    for pending in range(0, 700):
        count = table_workers(pending)
        assert count >= previous
        previous = count
    for first, last, low, high in TABLE_BANDS:
        assert table_workers(first) == low and table_workers(last) == high
        assert all(low <= table_workers(p) <= high for p in range(first, last + 1))


@pytest.mark.parametrize(("waiting", "in_flight", "creates"), [
    (0, 0, 0), (1, 0, 1), (0, 1, 1), (6, 5, 2), (50, 0, 5), (40, 11, 5), (120, 80, 20), (600, 0, 50),
])
def test_empty_pool_scales_to_the_table_of_pending(waiting: int, in_flight: int, creates: int) -> None:
    decision, _ = decide(observe(waiting, in_flight), BIG, Memory(), NOW)
    assert len(decision.create) == creates
    assert decision.target == creates
    assert decision.pending == waiting + in_flight
    assert not decision.held


def test_in_flight_keeps_busy_workers_when_nothing_waits() -> None:
    pool = [worker(f"w{i}", "busy") for i in range(3)]
    decision, _ = decide(observe(0, 3, pool), BIG, Memory(last_nonempty_at=NOW - 10_000), NOW)
    assert decision.pending == 3 and decision.target == 1
    assert decision.drain == () and decision.terminate == () and decision.create == ()


@pytest.mark.parametrize(("min_workers", "pending", "target"), [(0, 0, 0), (1, 0, 1), (3, 5, 3), (2, 60, 6)])
def test_min_workers_is_a_floor(min_workers: int, pending: int, target: int) -> None:
    config = PolicyConfig(min_workers=min_workers, max_step=100)
    decision, _ = decide(observe(pending), config, Memory(), NOW)
    assert decision.target == target and len(decision.create) == target


def test_min_worker_is_never_drained_by_idleness() -> None:
    config = PolicyConfig(min_workers=1, idle_s=60)
    decision, _ = decide(observe(0, 0, [worker("w1")]), config, Memory(last_nonempty_at=NOW - 10_000), NOW)
    assert decision.drain == () and decision.terminate == () and decision.target == 1


@pytest.mark.parametrize(("max_step", "pending", "creates", "bound"), [
    (4, 200, 4, "max_step"), (20, 200, 20, None), (1, 11, 1, "max_step"), (10, 5, 1, None),
])
def test_max_step_limits_creates_per_tick(max_step: int, pending: int, creates: int, bound: str | None) -> None:
    config = PolicyConfig(max_step=max_step, max_usd_per_hour=1000)
    decision, _ = decide(observe(pending), config, Memory(), NOW)
    assert len(decision.create) == creates
    assert decision.bound_by == bound
    assert decision.target == table_workers(pending)


def test_booting_workers_count_until_the_target_grows_beyond_them() -> None:
    pool = [worker("ready"), worker("b1", "booting", created_at=NOW - 30), worker("b2", "booting", created_at=NOW - 5)]
    decision, _ = decide(observe(30, 0), BIG, Memory(), NOW)  # sanity: table(30) = 4
    assert decision.target == 4
    decision, _ = decide(observe(24, 0, pool), BIG, Memory(), NOW)  # table(24) = 3: covered by the boots
    assert decision.create == () and decision.bound_by == "booting"
    decision, _ = decide(observe(50, 0, pool), BIG, Memory(), NOW)  # table(50) = 5: two more
    assert len(decision.create) == 2 and decision.bound_by is None


@pytest.mark.parametrize(("queued_chars", "waiting", "in_flight", "workers"), [
    (0, 0, 0, 0),  # nothing at all
    (0, 0, 3, 3),  # running chapters keep their workers
    (1_000, 1, 0, 1),  # 10 s of work: one worker
    (8_000, 4, 0, 1),  # 80 s = exactly one new worker's window (100 s - 20 s boot)
    (8_100, 4, 0, 2),  # just over
    (24_000, 10, 0, 3),  # 240 s / 80 s
    (24_000, 2, 0, 2),  # never more workers than waiting chapters
    (24_000, 10, 2, 3),  # two in flight on workers not seen: the new ones still cover the backlog
    (100, 1, 7, 7),  # never fewer than the chapters in flight
])
def test_backlog_policy_from_characters(queued_chars: int, waiting: int, in_flight: int, workers: int) -> None:
    config = PolicyConfig(policy="backlog", seconds_per_char=0.01, target_drain_s=100, boot_s=20,
                          max_step=100, max_usd_per_hour=1000)
    decision, _ = decide(observe(waiting, in_flight, queued_chars=queued_chars), config, Memory(), NOW)
    assert decision.desired == workers
    assert len(decision.create) == workers


def test_backlog_counts_idle_and_booting_workers_by_their_remaining_window() -> None:
    config = PolicyConfig(policy="backlog", seconds_per_char=0.01, target_drain_s=100, boot_s=20)
    idle = worker("idle")  # offers the whole 100 s
    half_booted = worker("boot", "booting", created_at=NOW - 10)  # 10 s of boot left: offers 90 s
    # 190 s of work fits idle (100) + the half-booted (90): no new worker.
    assert backlog_workers(10, 0, 19_000, (idle, half_booted), config, NOW) == 2
    # 1 s more needs one new worker (offers 80 s).
    assert backlog_workers(10, 0, 19_100, (idle, half_booted), config, NOW) == 3
    # A boot longer than the window still counts as 10 % of it.
    slow = PolicyConfig(policy="backlog", seconds_per_char=0.01, target_drain_s=100, boot_s=500)
    assert backlog_workers(100, 0, 5_000, (), slow, NOW) == 5


def test_busy_workers_offer_what_their_chapter_leaves_of_the_window() -> None:
    config = PolicyConfig(policy="backlog", seconds_per_char=0.01, target_drain_s=100, boot_s=20)
    busy = tuple(worker(f"b{i}", "busy") for i in range(20))
    # 20 busy workers, one 10 s chapter waiting: they free up in time; the pool does not grow (it used to ask
    # for 21, and so grew by one worker per boot under steady traffic).
    assert backlog_workers(1, 20, 1_000, busy, config, NOW) == 20
    # 4 busy workers, 10 chapters of 40 s each waiting (400 s): each busy worker offers 100 - 40 = 60 s,
    # 240 s in all; the other 160 s need two new workers (80 s each).
    assert backlog_workers(10, 4, 40_000, busy[:4], config, NOW) == 6


@pytest.mark.parametrize(("idle_for", "waiting", "released"), [
    (179, 0, ()),  # idle for less than a boot takes: kept
    (180, 0, ("dear",)),  # idle as long as a boot: it goes while a chapter is still in flight elsewhere
    (180, 1, ()),  # something waits: nothing is released
])
def test_backlog_releases_surplus_workers_idle_for_a_boot(idle_for: float, waiting: int,
                                                         released: tuple[str, ...]) -> None:
    config = PolicyConfig(policy="backlog", seconds_per_char=0.01, target_drain_s=100, boot_s=180, idle_s=600,
                          max_usd_per_hour=1000)
    pool = [worker("busy", "busy"), worker("cheap", usd=0.2), worker("dear", usd=0.4)]
    since = {"cheap": NOW - 10, "dear": NOW - idle_for}  # "cheap" only just went idle
    memory = Memory(last_nonempty_at=NOW, idle_since=since)
    decision, after = decide(observe(waiting, 1, pool, queued_chars=100 * waiting), config, memory, NOW)
    assert decision.drain == released
    assert decision.terminate == () and "busy" not in decision.drain
    assert after.idle_since == since  # carried from tick to tick while the workers stay idle


def test_table_policy_keeps_the_idle_window_rule_while_chapters_are_in_flight() -> None:
    config = PolicyConfig(policy="table", boot_s=180, idle_s=600)
    pool = [worker("busy", "busy"), worker("w1"), worker("w2")]
    memory = Memory(last_nonempty_at=NOW, idle_since={"w1": NOW - 5000, "w2": NOW - 5000})
    decision, _ = decide(observe(0, 1, pool), config, memory, NOW)
    assert decision.drain == () and "surplus kept while 1 pending" in decision.reason


def test_backlog_without_characters_falls_back_to_the_table() -> None:
    config = PolicyConfig(policy="backlog", max_step=100)
    decision, _ = decide(observe(60, 0, queued_chars=None), config, Memory(), NOW)
    assert decision.desired == table_workers(60)
    assert "table used" in decision.reason


@pytest.mark.parametrize(("idle_for", "drained"), [(0, 0), (299, 0), (299.999, 0), (300, 2), (5000, 2)])
def test_idle_window_with_an_injected_clock(idle_for: float, drained: int) -> None:
    config = PolicyConfig(idle_s=300)
    pool = [worker("w1", usd=0.2), worker("w2", usd=0.4)]
    decision, memory = decide(observe(0, 0, pool), config, Memory(last_nonempty_at=NOW - idle_for), NOW)
    assert len(decision.drain) == drained
    assert decision.terminate == ()  # idle workers are drained first, terminated on a later tick
    if drained:
        assert decision.drain == ("w2", "w1")  # dearest first
    assert memory.last_nonempty_at == NOW - idle_for


def test_pending_work_restarts_the_idle_window() -> None:
    config = PolicyConfig(idle_s=300)
    pool = [worker("w1"), worker("w2")]
    _, memory = decide(observe(1, 0, pool), config, Memory(last_nonempty_at=NOW - 5000), NOW)
    assert memory.last_nonempty_at == NOW
    decision, _ = decide(observe(0, 0, pool), config, memory, NOW + 299)
    assert decision.drain == ()
    decision, _ = decide(observe(0, 0, pool), config, memory, NOW + 300)
    assert set(decision.drain) == {"w1", "w2"}


def test_fresh_memory_starts_the_idle_window_instead_of_scaling_down_at_once() -> None:
    decision, memory = decide(observe(0, 0, [worker("w1")]), PolicyConfig(idle_s=60), Memory(), NOW)
    assert decision.drain == () and memory.last_nonempty_at == NOW


def test_scale_down_removes_unregistered_boots_then_idle_and_never_busy() -> None:
    config = PolicyConfig(idle_s=0)
    pool = [worker("busy1", "busy"), worker("idle1", usd=0.5), worker("boot1", "booting", created_at=NOW - 20),
            worker("req", "booting", requested=True, created_at=NOW - 1)]
    decision, _ = decide(observe(0, 0, pool), config, Memory(last_nonempty_at=NOW - 1), NOW)
    assert decision.terminate == ("boot1",)  # never registered: nothing runs there
    assert decision.drain == ("idle1",)
    assert "busy1" not in decision.terminate + decision.drain
    assert "req" not in decision.terminate  # a requested pod has no id yet


@pytest.mark.parametrize(("state", "consuming", "busy", "expect"), [
    ("draining", True, False, "drain"),  # the cancel has not taken effect: send again
    ("draining", False, True, None),  # still finishing its chapter
    ("draining", False, False, "terminate"),  # drained
])
def test_draining_workers(state: str, consuming: bool, busy: bool, expect: str | None) -> None:
    pool = [worker("d", state, consuming=consuming, busy=busy)]
    decision, _ = decide(observe(5, 0, pool), BIG, Memory(), NOW)
    assert decision.drain == (("d",) if expect == "drain" else ())
    assert decision.terminate == (("d",) if expect == "terminate" else ())
    assert decision.serving == 0 and decision.current == 1
    assert len(decision.create) == 1  # the draining worker does not serve: a replacement is made


@pytest.mark.parametrize(("kind", "age", "terminated"), [
    ("booting", 899, False), ("booting", 900, True), ("silent", 899, False), ("silent", 901, True),
    ("exited", 1, True), ("terminating", 1, True),
])
def test_reconcile_stuck_silent_exited(kind: str, age: float, terminated: bool) -> None:
    config = PolicyConfig(boot_timeout_s=900)
    if kind == "booting":
        w = worker("x", "booting", created_at=NOW - age)
    elif kind == "silent":
        w = worker("x", "silent", created_at=NOW - 5000, last_seen_at=NOW - age)
    else:
        w = worker("x", "booting", created_at=NOW - age, **{kind: True})
    decision, _ = decide(observe(3, 0, [w]), config, Memory(), NOW)
    assert (decision.terminate == ("x",)) is terminated
    assert decision.current == 1  # a leaving worker still counts against the caps this tick
    assert len(decision.create) == (1 if terminated else 0)  # and its replacement is made at once


def test_a_replacement_waits_when_the_leaving_worker_fills_the_cap() -> None:
    stuck = worker("x", "booting", created_at=NOW - 901)
    decision, _ = decide(observe(3, 0, [stuck]), PolicyConfig(max_workers=1), Memory(), NOW)
    assert decision.terminate == ("x",) and decision.create == () and decision.bound_by == "max_workers"


@pytest.mark.parametrize(("rule", "state", "action"), [
    ("adopt", "idle", None), ("terminate", "idle", "drain"), ("terminate", "busy", "drain"),
    ("terminate", "booting", "terminate"),
])
def test_orphans(rule: str, state: str, action: str | None) -> None:
    config = PolicyConfig(orphans=rule)  # type: ignore[arg-type]
    pool = [worker("orphan", state, owned=False, created_at=NOW - 10)]
    decision, _ = decide(observe(1, 0, pool), config, Memory(), NOW)
    assert decision.drain == (("orphan",) if action == "drain" else ())
    assert decision.terminate == (("orphan",) if action == "terminate" else ())
    assert decision.current == 1


@pytest.mark.parametrize("failed", ["waiting", "in_flight", "workers"])
def test_a_failed_read_holds_the_size(failed: str) -> None:
    pool = [worker("w1"), worker("b", "booting", created_at=NOW - 10_000)]
    obs = observe(waiting=None if failed == "waiting" else 500, in_flight=None if failed == "in_flight" else 0,
                  workers=pool, workers_known=failed != "workers", failures=(f"{failed}: connection refused",))
    decision, _ = decide(obs, PolicyConfig(idle_s=0), Memory(last_nonempty_at=NOW - 10_000), NOW)
    assert decision.held
    assert decision.target == decision.current == 2
    assert decision.create == () and decision.drain == () and decision.terminate == ()
    assert decision.failures == (f"{failed}: connection refused",)
    assert "hold" in decision.reason


def test_decide_is_pure() -> None:
    obs = observe(70, 3, [worker("w1"), worker("b", "booting", created_at=NOW - 5)], offers=(A4000, RTX3090))
    memory = Memory(last_nonempty_at=NOW - 50, day="1970-01-12", spent_today_usd=1.0, accounted_at=NOW - 30)
    first = decide(obs, PolicyConfig(), memory, NOW)
    assert decide(obs, PolicyConfig(), memory, NOW) == first
    assert memory == Memory(last_nonempty_at=NOW - 50, day="1970-01-12", spent_today_usd=1.0, accounted_at=NOW - 30)


_states = st.sampled_from(["booting", "idle", "busy", "draining", "silent"])


@st.composite
def _workers(draw: st.DrawFn) -> tuple[Worker, ...]:
    count = draw(st.integers(0, 12))
    pool = []
    for i in range(count):
        state = draw(_states)
        busy = state == "busy" or (state == "draining" and draw(st.booleans()))
        seen = None if state == "booting" else NOW - draw(st.floats(0, 2000))
        pool.append(Worker(
            name=f"w{i}", state=state, usd_per_hour=draw(st.sampled_from([0.0, 0.22, 0.34, 0.69, 1.19])),
            created_at=NOW - draw(st.floats(0, 5000)), busy=busy,
            consuming=state != "draining" or draw(st.booleans()), owned=draw(st.booleans()),
            requested=state == "booting" and draw(st.booleans()), last_seen_at=seen))
    return tuple(pool)


@settings(max_examples=400, deadline=None)
@given(pool=_workers(), waiting=st.integers(0, 700), in_flight=st.integers(0, 60),
       max_workers=st.integers(0, 15), cap=st.sampled_from([0.0, 0.3, 1.0, 2.5, 100.0]),
       max_step=st.integers(1, 10), min_workers=st.integers(0, 3), policy=st.sampled_from(["table", "backlog"]),
       orphans=st.sampled_from(["adopt", "terminate"]), budget=st.sampled_from([None, 0.5, 1000.0]),
       idle_for=st.floats(0, 2000))
def test_no_decision_ever_creates_past_a_cap_or_removes_a_busy_worker(
        pool, waiting, in_flight, max_workers, cap, max_step, min_workers, policy, orphans, budget, idle_for) -> None:
    config = PolicyConfig(policy=policy, min_workers=min(min_workers, max_workers), max_workers=max_workers,
                          max_usd_per_hour=cap, max_step=max_step, orphans=orphans, daily_budget_usd=budget,
                          idle_s=600)
    memory = Memory(last_nonempty_at=NOW - idle_for, day="1970-01-12", spent_today_usd=0.6, accounted_at=NOW - 60)
    obs = observe(waiting, in_flight, pool, offers=(A4000, RTX3090, GpuOffer("H100", 2.99)), queued_chars=waiting * 900)
    decision, _ = decide(obs, config, memory, NOW)
    if decision.create:
        assert len(pool) + len(decision.create) <= max_workers
        assert decision.usd_per_hour_planned <= cap + 1e-9
        assert len(decision.create) <= max_step
    by_name = {w.name: w for w in pool}
    for name in decision.terminate:
        assert not by_name[name].busy
        assert not by_name[name].requested
    assert len(set(decision.terminate) | set(decision.drain)) == len(decision.terminate) + len(decision.drain)
