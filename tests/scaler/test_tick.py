"""Whole live ticks end to end: real Redis (state, lock, broker), real Celery control, RunPod through the
unmodified SDK and the loopback fake, which lies as RunPod can. Assertions read the fake's truth (the pods that
bill) and the Redis state, not only what the scaler says."""

from __future__ import annotations

import json
import logging
import time

from scaler.providers.base import MARKER_ENV
from tests.fakes.runpod_api import FakeGpu
from tests.scaler.conftest import A4000, BROKER_SECRET, DEPLOYMENT
from tests.support.processes import wait_for

LONG_TEXT = "The quick brown fox jumps over the lazy dog, and the dog does not mind at all. " * 320


class Clock:
    """An injected clock: the scaler's timeouts pass without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


def test_scale_up_records_and_logs_without_secrets(fake_runpod, make_runpod, make_scaler, enqueue, caplog,
                                                   redis_client) -> None:
    caplog.set_level(logging.INFO, logger="scaler.decisions")
    scaler = make_scaler(make_runpod(), max_step=10)
    enqueue(30)
    record = scaler.tick()
    assert record.outcome == "ok" and record.observation.waiting == 30 and record.decision.target == 4
    assert len(record.executed.created) == 4 and len(fake_runpod.live_pods()) == 4
    assert all(p.env[MARKER_ENV] == f"test-gpu/{DEPLOYMENT}" for p in fake_runpod.live_pods())
    assert scaler.store.records(1)[0] == record
    lines = [r.getMessage() for r in caplog.records if r.name == "scaler.decisions"]
    assert len(lines) == 1 and json.loads(lines[0])["decision"]["target"] == 4
    second = scaler.tick()
    assert second.executed.created == () and second.decision.bound_by == "booting"
    stored = b"".join(redis_client.lrange(scaler.store.key("decisions"), 0, -1))
    for secret in (BROKER_SECRET, fake_runpod.api_key, "aws-secret"):
        assert secret not in caplog.text and secret.encode() not in stored


def test_lost_create_answer_is_reserved_then_owned(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod())
    enqueue(5)  # table: 1
    fake_runpod.inject("after500", operation="create")
    record = scaler.tick()
    assert record.executed.created == () and any("outcome unknown" in f for f in record.executed.failures)
    assert len(fake_runpod.live_pods()) == 1  # the create happened; its answer was lost
    record = scaler.tick()
    assert record.executed.created == () and record.reconcile.adopted == ()
    [stored] = scaler.store.load().workers.values()
    assert stored.status == "active" and stored.instance_id == fake_runpod.live_pods()[0].id


def test_a_hung_create_that_lands_later_is_counted_meanwhile(fake_runpod, make_runpod, make_scaler,
                                                              enqueue) -> None:
    scaler = make_scaler(make_runpod(timeout_s=0.3), max_workers=1)
    enqueue(5)
    fake_runpod.inject("hang", operation="create", delay_s=1.0)  # the pod is made after the caller gave up
    record = scaler.tick()
    assert "no answer within 0.3s" in " ".join(record.executed.failures) and fake_runpod.live_pods() == []
    record = scaler.tick()  # the reservation holds the only slot
    assert record.executed.created == () and record.observation.states == {"booting": 1}
    wait_for(lambda: fake_runpod.live_pods(), 5, 0.05, "the late pod")
    record = scaler.tick()
    assert record.executed.created == () and record.reconcile.adopted == () and len(fake_runpod.live_pods()) == 1


def test_a_failed_terminate_is_retried_and_still_counted(fake_runpod, make_runpod, make_scaler, enqueue,
                                                         redis_client) -> None:
    scaler = make_scaler(make_runpod(), idle_s=0, max_workers=1)
    enqueue(1)
    scaler.tick()
    redis_client.delete("gpu-long")
    fake_runpod.inject("http500", operation="terminate")
    record = scaler.tick()  # idle_s=0: the unregistered pod goes at once, but the call fails
    assert record.decision.terminate and record.executed.terminated == () and len(fake_runpod.live_pods()) == 1
    assert [r.status for r in scaler.store.load().workers.values()] == ["terminating"]
    enqueue(5)
    record = scaler.tick()  # the pod being terminated still counts: max_workers=1 allows no create
    assert record.executed.created == () and fake_runpod.live_pods() == []


# --- RunPod answers without an error, but not the whole truth (the rows of the issue) -------------------------
def test_a_listing_without_the_pods_forgets_nothing_and_creates_nothing(fake_runpod, make_runpod, make_scaler,
                                                                        enqueue) -> None:
    scaler = make_scaler(make_runpod(), max_workers=3, max_usd_per_hour=3.0)
    enqueue(30)
    scaler.tick()
    scaler.tick()  # listed once
    assert len(fake_runpod.live_pods()) == 3
    fake_runpod.inject("omit_all", operation="pods")  # `pods: []` while the three run
    scaler.tick()
    assert len(fake_runpod.live_pods()) == 3, "pods created past the cap"
    assert len(scaler.store.load().workers) == 3, "records of pods that bill were forgotten"
    scaler.tick()
    assert len(fake_runpod.live_pods()) == 3 and len(scaler.store.load().workers) == 3


def test_pods_whose_listing_hides_the_marker_stay_known_within_the_caps(fake_runpod, make_runpod, make_scaler,
                                                                        enqueue) -> None:
    """The listing never echoes the env: created pods never show the marker. Their ids are known: they are
    never forgotten, and after 30 minutes the pool is still within $1.02/h (3 x 0.34)."""
    fake_runpod.echo_env = False
    clock = Clock()
    scaler = make_scaler(make_runpod(), max_workers=9, max_usd_per_hour=1.02, boot_timeout_s=900, clock=clock,
                         inspect_timeout_s=0.05)
    enqueue(30)
    for _ in range(30):
        scaler.tick()
        usd = sum(p.cost_per_hr for p in fake_runpod.live_pods())
        assert usd <= 1.02 + 1e-9, f"{len(fake_runpod.live_pods())} pods billing {usd:.2f} USD/h against 1.02"
        clock.wait(60)
    known = {r.instance_id for r in scaler.store.load().workers.values()}
    assert {p.id for p in fake_runpod.live_pods()} <= known


def test_a_busy_worker_whose_pod_is_listed_without_a_runtime_is_not_terminated(
        fake_runpod, make_runpod, make_scaler, enqueue, start_worker, client_app) -> None:
    clock = Clock()
    scaler = make_scaler(make_runpod(), max_workers=1, boot_timeout_s=900, inspect_timeout_s=1.0, clock=clock)
    enqueue(1, text=LONG_TEXT)
    scaler.tick()
    [pod] = fake_runpod.live_pods()
    start_worker(name=f"gpu-{pod.name}")  # what the pod runs, answering under the pod's name
    wait_for(lambda: any((client_app.control.inspect(timeout=0.5).active() or {}).values()),
             120, 0.3, "the worker to start the chapter")
    clock.wait(2000)  # long past the boot timeout, counted from the create
    fake_runpod.null_runtime(pod.id, times=1)  # RUNNING and busy, listed once with `runtime: null`
    scaler.tick()
    assert fake_runpod.live_pods() == [pod], "a busy worker was terminated on a provider status glitch"
    assert [r.status for r in scaler.store.load().workers.values()] == ["active"]


def test_pods_of_another_deployment_are_never_adopted_or_terminated(fake_runpod, make_runpod, make_scaler) -> None:
    old_style = fake_runpod.add_pod("test-gpu-1a2b3c4d", {MARKER_ENV: "test-gpu"}, created_at=time.time() - 3600)
    other = fake_runpod.add_pod("test-gpu-5e6f7a8b", {MARKER_ENV: "test-gpu/another-deployment"},
                                created_at=time.time() - 3600)
    scaler = make_scaler(make_runpod(), orphans="terminate", idle_s=0)
    for _ in range(3):
        scaler.tick()
    assert {p.id for p in fake_runpod.live_pods()} == {old_style.id, other.id}
    assert scaler.store.load().workers == {}
    record = scaler.tick()
    assert set(record.reconcile.foreign) == {old_style.name, other.name} and record.decision.current == 0


def test_hanging_price_calls_do_not_make_the_tick_outlast_its_lock(fake_runpod, make_runpod, make_scaler,
                                                                   enqueue) -> None:
    """Four GPU types whose price calls hang past the 0.5 s provider deadline: one after the other they would
    take 2 s, past the 1.5 s lock; read together they take one deadline, and the fifth type is created."""
    slow = [f"NVIDIA Slow {i}" for i in range(4)]
    for gpu_id in slow:
        fake_runpod.gpus[gpu_id] = FakeGpu(gpu_id, gpu_id, 16, 0.30, 0.20)
    fake_runpod.inject("hang", operation="gpu", times=4, delay_s=3.0)
    scaler = make_scaler(make_runpod(gpu_types=[*slow, A4000], timeout_s=0.5), lock_ttl_s=1.5)
    enqueue(1)
    scaler.tick()
    assert len(fake_runpod.live_pods()) == 1, "the tick lost its lock before it could create"
