"""The execution core in memory: simulated pods that lie as told, a dict store and a clock the test moves.

Each test reads the truth from the simulated cloud (the pods that bill), not from what the scaler believes.
"""

from __future__ import annotations

import pytest

from scaler.core import read_world
from scaler.policy import PolicyConfig
from scaler.sim.cloud import BROKEN_IMAGE, DEPLOYMENT
from scaler.sim.faults import FaultModel
from scaler.state import MemoryStore, WorkerRecord
from tests.scaler.memworld import A4000, BOOT_S, RTX3090, MemWorld

CAP3 = PolicyConfig(max_workers=3, max_usd_per_hour=3.0, boot_timeout_s=900)


def test_scale_up_from_the_queue_then_wait_for_the_boots() -> None:
    m = MemWorld(PolicyConfig(max_step=10))
    m.queue(30)
    record = m.tick()
    assert record.outcome == "ok" and record.decision.target == 4  # table: 30 pending -> 4
    assert len(record.executed.created) == 4 and len(m.pods()) == 4
    assert sorted(m.store.workers) == sorted(p.name for p in m.pods())
    record = m.tick()
    assert record.executed.created == () and record.decision.bound_by == "booting"
    assert record.observation.states == {"booting": 4}


def test_capacity_error_falls_back_to_the_next_type_and_backs_off() -> None:
    m = MemWorld(capacity_backoff_s=60)
    m.cloud.sold_out.add(A4000.gpu_type)
    m.queue(15)  # table: 3
    record = m.tick()
    assert [c.gpu_type for c in record.executed.created] == [RTX3090.gpu_type] * 3
    assert any("no longer any instances" in f for f in record.executed.failures)
    m.queue(55)  # 6
    record = m.tick()
    assert [o.gpu_type for o in record.observation.offers] == [RTX3090.gpu_type]  # backing off
    m.cloud.sold_out.clear()
    m.wait(61)
    m.queue(85)  # 9
    record = m.tick()
    assert [c.gpu_type for c in record.executed.created] == [A4000.gpu_type] * 3


def test_usd_cap_binds_with_mixed_prices() -> None:
    m = MemWorld(PolicyConfig(max_usd_per_hour=1.20, max_step=10))
    m.cloud.sold_out.add(A4000.gpu_type)
    m.queue(100)
    record = m.tick()
    assert len(record.executed.created) == 2 and m.usd() == pytest.approx(0.86)  # a third 0.43 would pass 1.20
    record = m.tick()
    assert record.executed.created == () and record.decision.bound_by == "max_usd_per_hour"


def test_lost_create_answer_is_reserved_then_bound_by_name() -> None:
    m = MemWorld(PolicyConfig(max_workers=1))
    m.queue(5)
    record = m.tick(faults=FaultModel(lost_create=1.0))
    assert record.executed.created == () and any("outcome unknown" in f for f in record.executed.failures)
    assert len(m.pods()) == 1  # the create happened; its answer was lost
    record = m.tick()
    assert record.executed.created == () and record.reconcile.adopted == ()
    [stored] = m.store.workers.values()
    assert stored.status == "active" and stored.instance_id == m.pods()[0].id


def test_a_late_create_is_counted_until_its_pod_shows_up() -> None:
    m = MemWorld(PolicyConfig(max_workers=1))
    m.queue(5)
    m.tick(faults=FaultModel(late_create=1.0, late_s=1000))
    [pod] = m.cloud.ours
    pod.visible_at = m.clock.t + 50
    record = m.tick()  # not listed yet: the reservation holds the only slot
    assert record.executed.created == () and record.observation.states == {"booting": 1}
    m.wait(60)
    record = m.tick()
    assert record.executed.created == () and m.store.workers[pod.name].instance_id == pod.id


def test_a_create_that_never_happened_is_dropped_after_the_boot_timeout() -> None:
    m = MemWorld(PolicyConfig(boot_timeout_s=600))
    m.queue(5)
    m.tick(faults=FaultModel(failed_create=1.0))
    assert m.pods() == [] and len(m.store.workers) == 1
    m.wait(599)
    record = m.tick()
    assert record.executed.created == () and record.observation.states == {"booting": 1}
    m.wait(1)
    record = m.tick()
    assert len(record.reconcile.forgotten) == 1 and len(record.executed.created) == 1


def test_a_pod_is_forgotten_only_when_the_provider_confirms_it_gone() -> None:
    m = MemWorld()
    m.queue(3)
    m.tick()
    m.tick()  # listed once
    [pod] = m.pods()
    m.cloud.kill(pod)  # gone behind the scaler's back
    record = m.tick()
    assert record.reconcile.looked_up == (pod.id,) and record.reconcile.forgotten == (pod.name,)
    assert len(record.executed.created) == 1  # and replaced, since work is waiting


def test_a_pod_we_terminated_is_forgotten_without_a_lookup() -> None:
    m = MemWorld(PolicyConfig(idle_s=0))
    m.queue(1)
    m.tick()
    m.queue(0)
    record = m.tick()  # never registered, no work: terminated at once
    assert len(record.executed.terminated) == 1 and m.pods() == []
    record = m.tick()
    assert record.reconcile.looked_up == () and len(record.reconcile.forgotten) == 1 and m.store.workers == {}


@pytest.mark.parametrize("rule", ["adopt", "terminate"])
def test_unknown_marked_pods_are_looked_up_then_adopted_or_removed(rule: str) -> None:
    m = MemWorld(PolicyConfig(orphans=rule))  # type: ignore[arg-type]
    m.cloud.create("audiobook-gpu-orphan", A4000.gpu_type)  # ours by its marker, not in the state
    [orphan] = m.pods()
    record = m.tick()
    assert orphan.id in record.reconcile.looked_up
    if rule == "adopt":
        assert record.reconcile.adopted == ("audiobook-gpu-orphan",) and "audiobook-gpu-orphan" in m.store.workers
        assert m.pods() == [orphan]
    else:
        assert record.decision.terminate == ("audiobook-gpu-orphan",) and m.pods() == []
        assert m.store.workers == {}


def test_boot_timeout_replaces_a_worker_that_never_registers() -> None:
    m = MemWorld(PolicyConfig(boot_timeout_s=600))
    m.queue(3)
    m.tick()
    [first] = m.pods()
    first.ready_at = None  # stuck: never registers
    m.wait(600)
    record = m.tick()
    assert record.executed.terminated == (first.name,) and len(record.executed.created) == 1
    assert record.health.failed_in_a_row == 1 and "did not register" in record.health.last_error


def test_a_failed_listing_holds() -> None:
    m = MemWorld()
    m.queue(30)
    record = m.tick(faults=FaultModel(list_error=1.0))
    assert record.outcome == "held" and record.decision.held and m.pods() == []
    assert record.observation.failed_sources == ("provider",) and record.decision.failures


def test_dry_run_decides_and_records_but_creates_nothing() -> None:
    m = MemWorld()
    m.queue(12)
    record = m.tick(dry_run=True)
    assert record.outcome == "dry_run" and len(record.decision.create) == 3 and m.pods() == []


def test_scale_down_after_the_idle_window_drains_then_terminates() -> None:
    m = MemWorld(PolicyConfig(idle_s=300))
    m.queue(12)
    m.tick()
    m.wait(BOOT_S)
    m.up()
    m.queue(0)
    record = m.tick()
    assert record.decision.drain == () and "left" in record.decision.reason
    m.wait(300)
    record = m.tick()
    assert len(record.executed.drained) == 3 and all(p.draining for p in m.pods())
    record = m.tick()  # drained and idle: terminated
    assert len(record.executed.terminated) == 3 and m.pods() == []


# --- the provider lies (issue table) ------------------------------------------------------------------------
def test_a_listing_without_the_busy_pods_holds_and_forgets_nothing() -> None:
    m = MemWorld(CAP3)
    m.queue(30, in_flight=3)
    m.tick()
    m.wait(BOOT_S)
    m.up(busy=True)
    assert m.tick().observation.states == {"busy": 3}  # listed, answering, busy
    for _ in range(5):
        record = m.tick(faults=FaultModel(omit_all=1.0))  # `pods: []` while 3 busy pods run
        assert record.outcome == "held" and len(record.reconcile.omitted) == 3
        assert len(m.pods()) == 3 and len(m.store.workers) == 3 and record.executed.created == ()
    record = m.tick()
    assert record.outcome == "ok" and len(m.pods()) == 3 and record.decision.bound_by == "max_workers"


def test_a_listing_that_leaves_out_one_known_pod_holds() -> None:
    m = MemWorld(CAP3)
    m.queue(30)
    m.tick()
    m.tick()
    first = m.pods()[0]
    m.cloud.hidden.add(first.id)
    record = m.tick()
    assert record.outcome == "held" and record.reconcile.omitted == (first.name,)
    assert first.name in m.store.workers and len(m.pods()) == 3


def test_pods_that_never_show_in_the_listing_stay_known_and_counted() -> None:
    """The marker is not echoed: created pods never appear in a listing. Their ids are known: they are looked
    up every tick and count against the caps for as long as they exist (30 minutes here)."""
    m = MemWorld(CAP3)
    m.queue(200)
    for _ in range(60):
        m.cloud.hidden.update(p.id for p in m.pods())
        record = m.tick()
        assert record.outcome == "ok"
        assert len(m.pods()) <= 3 and m.usd() <= 3.0
        m.wait(30)
        m.up(busy=True)
    assert len(m.cloud.ours) == 3 and len(m.store.workers) == 3


def test_a_busy_worker_listed_without_a_runtime_is_not_terminated() -> None:
    m = MemWorld(CAP3)
    m.queue(10, in_flight=3)
    m.tick()
    m.wait(2000)  # created long ago: far past the boot timeout
    m.up(busy=True)
    record = m.tick(faults=FaultModel(null_runtime=1.0))
    assert record.executed.terminated == () and record.observation.states == {"busy": 3}
    assert len(m.pods()) == 3


def test_silence_counts_from_the_last_answer() -> None:
    m = MemWorld(PolicyConfig(boot_timeout_s=600))
    m.queue(3)
    m.tick()
    m.wait(5000)
    m.up()
    m.tick()  # answers: last seen now
    [pod] = m.pods()
    pod.ready_at = None  # its worker stops answering
    m.wait(599)
    record = m.tick()
    assert record.observation.states == {"silent": 1} and record.executed.terminated == ()
    m.wait(1)
    record = m.tick()
    assert record.executed.terminated == (pod.name,)


def test_a_busy_worker_is_never_terminated_whatever_the_decision() -> None:
    m = MemWorld()
    m.queue(3, in_flight=1)
    m.tick()
    m.up(busy=True)
    [pod] = m.pods()
    m.store.workers[pod.name].status = "terminating"  # e.g. a terminate that failed before it took a chapter
    record = m.tick()
    assert record.executed.terminated == () and m.pods() == [pod]


@pytest.mark.parametrize("rule", ["adopt", "terminate"])
def test_pods_of_another_deployment_are_never_adopted_drained_or_terminated(rule: str) -> None:
    m = MemWorld(PolicyConfig(orphans=rule, max_workers=2, idle_s=0))  # type: ignore[arg-type]
    stranger = m.foreign("audiobook-gpu-1a2b3c4d")
    for _ in range(3):
        record = m.tick()
        assert record.reconcile.foreign == (stranger.name,) and record.reconcile.adopted == ()
        assert stranger.name not in record.decision.terminate + record.decision.drain
        assert record.decision.current == 0  # not ours: not counted against our caps either
    assert m.cloud.pods[stranger.id] is stranger and m.cloud.stats.foreign_touched == 0


# --- crash-loop breaker ---------------------------------------------------------------------------------
def test_workers_that_cannot_load_the_model_open_the_breaker_and_creating_stops() -> None:
    m = MemWorld(PolicyConfig(max_workers=4, min_workers=0), crash_loop_workers=2, crash_loop_cooloff_s=1800)
    m.cloud.broken_until = float("inf")  # every new pod comes up with an image whose model cannot load
    m.queue(30)
    record = m.tick()
    assert len(record.executed.created) == 4
    m.wait(BOOT_S)
    record = m.tick()  # they register and say why they cannot serve
    assert len(record.executed.terminated) == 4 and record.executed.created == ()
    assert record.health.crash_loop and record.health.last_error == BROKEN_IMAGE
    assert record.decision.bound_by == "crash_loop" and record.health.healthy == 0
    for _ in range(10):
        m.wait(30)
        record = m.tick()
        assert record.executed.created == () and record.decision.bound_by == "crash_loop"
    assert len(m.cloud.ours) == 4
    m.wait(1800)  # the cool-off ends: one more try, which fails and stops creating again
    record = m.tick()
    assert not record.health.crash_loop and len(record.executed.created) >= 1
    m.wait(BOOT_S)
    record = m.tick()
    assert record.health.crash_loop and record.executed.created == ()


def test_the_breaker_keeps_the_minimum_and_a_healthy_start_closes_it() -> None:
    m = MemWorld(PolicyConfig(max_workers=4, min_workers=1), crash_loop_workers=1)
    m.cloud.broken_until = float("inf")
    m.queue(30)
    m.tick()
    m.wait(BOOT_S)
    record = m.tick()  # all four fail; the leaving ones still fill the cap this tick
    assert record.health.crash_loop and len(record.executed.terminated) == 4
    m.cloud.broken_until = -1.0  # the image is fixed
    record = m.tick()
    assert record.health.crash_loop and len(record.executed.created) == 1  # the minimum is kept, no more
    m.wait(30)
    assert m.tick().executed.created == ()
    m.wait(BOOT_S)
    record = m.tick()
    assert not record.health.crash_loop and record.health.failed_in_a_row == 0 and record.health.healthy == 1
    assert len(record.executed.created) >= 1  # creating resumed


def test_boot_timeouts_count_toward_the_breaker() -> None:
    m = MemWorld(PolicyConfig(max_workers=2, boot_timeout_s=600), crash_loop_workers=2)
    m.queue(30)
    m.tick()
    for pod in m.pods():
        pod.ready_at = None
    m.wait(600)
    record = m.tick()
    assert record.health.crash_loop and record.decision.bound_by == "crash_loop"
    assert "did not register within 600s" in record.health.last_error


# --- reads are reads, and bounded ------------------------------------------------------------------------
class WatchedStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def put_worker(self, record: WorkerRecord) -> None:
        self.writes.append(f"put {record.name}")
        super().put_worker(record)

    def delete_worker(self, name: str) -> None:
        self.writes.append(f"delete {name}")
        super().delete_worker(name)


def test_observation_is_a_pure_read() -> None:
    m = MemWorld()
    m.store = m.world.store = WatchedStore()
    m.queue(5)
    m.tick()
    m.cloud.create("audiobook-gpu-orphan", A4000.gpu_type)
    m.cloud.kill(m.cloud.ours[0])
    durable = m.store.load()
    before = {n: r.copy() for n, r in durable.workers.items()}
    m.store.writes.clear()
    read = read_world(m.world, durable, m.options, m.clock())
    assert m.store.writes == [] and durable.workers == before
    assert len(read.reads.lookups) == 2  # the pod that went, and the unknown marked one


def test_hanging_price_calls_leave_their_type_out_not_the_tick() -> None:
    m = MemWorld()
    m.queue(5)
    record = m.tick(faults=FaultModel(price_hang=1.0))
    assert record.observation.offers == () and record.executed.created == ()
    assert any("no answer" in f for f in record.decision.failures)
    assert record.outcome == "ok"  # the tick went on: no offer, no create


def test_the_simulated_pods_are_ours() -> None:
    m = MemWorld()
    m.queue(2)
    m.tick()
    assert {p.deployment for p in m.pods()} == {DEPLOYMENT}
