"""Whole ticks: real Redis (state, lock, broker), real Celery control, RunPod through the SDK and the fake."""

from __future__ import annotations

import json
import logging
import time

import pytest
from prometheus_client import generate_latest

from scaler import metrics
from scaler.observe import RedisDepth
from scaler.providers.base import MARKER_ENV
from tests.scaler.conftest import A4000, BROKER_SECRET, RTX3090
from tests.support.processes import free_port, wait_for


def _creates(fake, gpu_type: str) -> int:
    return sum(1 for q in fake.queries if "podFindAndDeployOnDemand" in q and f'gpuTypeId: "{gpu_type}"' in q)


def test_scale_up_from_the_queue_then_wait_for_the_boots(fake_runpod, make_runpod, make_scaler, enqueue, caplog,
                                                          redis_client) -> None:
    caplog.set_level(logging.INFO, logger="scaler.decisions")
    scaler = make_scaler(make_runpod(), max_step=10)
    enqueue(30)
    record = scaler.tick()
    assert record["outcome"] == "ok"
    assert record["observation"]["waiting"] == 30 and record["observation"]["pending"] == 30
    assert record["decision"]["target"] == 4  # table: 30 pending -> 4
    assert len(record["executed"]["created"]) == 4 and len(fake_runpod.live_pods()) == 4
    assert all(p.name.startswith("test-gpu-") for p in fake_runpod.live_pods())
    assert scaler.store.records(1)[0]["ts"] == record["ts"]
    lines = [r.getMessage() for r in caplog.records if r.name == "scaler.decisions"]
    assert len(lines) == 1 and json.loads(lines[0])["decision"] == record["decision"]

    second = scaler.tick()
    assert second["executed"]["created"] == [] and len(fake_runpod.live_pods()) == 4
    assert second["decision"]["bound_by"] == "booting"
    assert second["observation"]["states"] == {"booting": 4}

    stored = b"".join(redis_client.lrange(scaler.store.key("decisions"), 0, -1))
    for secret in (BROKER_SECRET, fake_runpod.api_key, "aws-secret"):
        assert secret not in caplog.text and secret.encode() not in stored


def test_capacity_error_falls_back_to_the_next_type_and_backs_off(fake_runpod, make_runpod, make_scaler,
                                                                   enqueue) -> None:
    fake_runpod.set_capacity(A4000, 0)
    scaler = make_scaler(make_runpod(), capacity_backoff_s=1.0)
    enqueue(15)  # table: 3
    record = scaler.tick()
    assert [c["gpu_type"] for c in record["executed"]["created"]] == [RTX3090] * 3
    assert _creates(fake_runpod, A4000) == 1  # tried once, then backed off within the same tick
    assert any("no longer any instances" in f for f in record["executed"]["failures"])

    enqueue(40)  # 55 pending: 6
    record = scaler.tick()
    assert [o["gpu_type"] for o in record["observation"]["offers"]] == [RTX3090]
    assert _creates(fake_runpod, A4000) == 1
    assert len(record["executed"]["created"]) == 3

    time.sleep(1.1)
    fake_runpod.set_capacity(A4000, None)
    enqueue(30)  # 85 pending: 5 + ceil(34 * 15 / 149) = 9
    record = scaler.tick()
    assert [o["gpu_type"] for o in record["observation"]["offers"]] == [A4000, RTX3090]
    assert [c["gpu_type"] for c in record["executed"]["created"]] == [A4000] * 3


def test_usd_cap_binds_mid_scale_up_with_mixed_prices(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod(), max_usd_per_hour=1.20, max_step=10)
    fake_runpod.set_capacity(A4000, 2)  # two A4000 (0.34), then the 3090 (0.43): 1.11; a fourth never fits
    enqueue(100)
    record = scaler.tick()
    created = [c["gpu_type"] for c in record["executed"]["created"]]
    assert created == [A4000, A4000, RTX3090]
    assert sum(p.cost_per_hr for p in fake_runpod.live_pods()) == pytest.approx(1.11)
    record = scaler.tick()
    assert record["executed"]["created"] == []
    assert record["decision"]["bound_by"] == "max_usd_per_hour"
    assert sum(p.cost_per_hr for p in fake_runpod.live_pods()) <= 1.20


def test_lost_create_answer_is_reserved_then_owned(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod())
    enqueue(5)  # table: 1
    fake_runpod.inject("after500", operation="create")
    record = scaler.tick()
    assert record["executed"]["created"] == []
    assert any("outcome unknown" in f for f in record["executed"]["failures"])
    assert len(fake_runpod.live_pods()) == 1  # the create happened; its answer was lost
    record = scaler.tick()
    assert record["executed"]["created"] == [] and record["reconcile"]["adopted"] == []
    assert len(fake_runpod.live_pods()) == 1
    [stored] = scaler.store.load().workers.values()
    assert stored.status == "active" and stored.instance_id == fake_runpod.live_pods()[0].id


def test_a_hung_create_that_lands_later_is_counted_meanwhile(fake_runpod, make_runpod, make_scaler,
                                                              enqueue) -> None:
    scaler = make_scaler(make_runpod(timeout_s=0.3), max_workers=1)
    enqueue(5)
    fake_runpod.inject("hang", operation="create", delay_s=1.0)  # the pod is made after the caller gave up
    record = scaler.tick()
    assert "no answer within 0.3s" in " ".join(record["executed"]["failures"])
    assert fake_runpod.live_pods() == []
    record = scaler.tick()  # the reservation holds the only slot
    assert record["executed"]["created"] == [] and record["observation"]["states"] == {"booting": 1}
    wait_for(lambda: fake_runpod.live_pods(), 5, 0.05, "the late pod")
    record = scaler.tick()
    assert record["executed"]["created"] == [] and record["reconcile"]["adopted"] == []
    assert len(fake_runpod.live_pods()) == 1


def test_create_that_never_happened_is_reserved_until_the_boot_timeout(fake_runpod, make_runpod, make_scaler,
                                                                        enqueue) -> None:
    scaler = make_scaler(make_runpod(), boot_timeout_s=1.0)
    enqueue(5)
    fake_runpod.inject("http500", operation="create")
    scaler.tick()
    assert fake_runpod.live_pods() == []
    record = scaler.tick()  # the reservation still counts: no second create
    assert record["executed"]["created"] == [] and record["observation"]["states"] == {"booting": 1}
    time.sleep(1.05)
    record = scaler.tick()
    assert len(record["reconcile"]["forgotten"]) == 1 and len(record["executed"]["created"]) == 1


@pytest.mark.parametrize("rule", ["adopt", "terminate"])
def test_orphans_are_adopted_or_terminated(fake_runpod, make_runpod, make_scaler, rule: str) -> None:
    orphan = fake_runpod.add_pod("test-gpu-orphan1", {MARKER_ENV: "test-gpu"})
    stranger = fake_runpod.add_pod("someone-else", {"X": "1"})
    scaler = make_scaler(make_runpod(), orphans=rule)
    record = scaler.tick()
    live = {p.id for p in fake_runpod.live_pods()}
    if rule == "adopt":
        assert record["reconcile"]["adopted"] == ["test-gpu-orphan1"]
        assert "test-gpu-orphan1" in scaler.store.load().workers
        assert live == {orphan.id, stranger.id}
    else:
        assert record["decision"]["terminate"] == ["test-gpu-orphan1"]
        assert live == {stranger.id}


def test_pods_no_longer_listed_are_forgotten(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod())
    enqueue(3)
    scaler.tick()
    scaler.tick()  # listed once
    fake_runpod.pods.clear()  # gone behind the scaler's back
    record = scaler.tick()
    assert len(record["reconcile"]["forgotten"]) == 1
    assert len(record["executed"]["created"]) == 1  # and replaced, since work is waiting


def test_boot_timeout_replaces_a_pod_whose_worker_never_registers(fake_runpod, make_runpod, make_scaler,
                                                                  enqueue) -> None:
    scaler = make_scaler(make_runpod(), boot_timeout_s=1.0)
    enqueue(3)
    first = scaler.tick()["executed"]["created"][0]["id"]
    time.sleep(1.05)
    record = scaler.tick()
    assert record["executed"]["terminated"] and first not in fake_runpod.pods
    assert len(record["executed"]["created"]) == 1  # replaced in the same tick, within the caps
    record = scaler.tick()
    assert record["executed"]["created"] == [] and record["reconcile"]["forgotten"]


@pytest.mark.parametrize("fault", ["provider", "broker"])
def test_a_failed_read_holds_and_is_recorded(fake_runpod, make_runpod, make_scaler, enqueue, fault: str) -> None:
    scaler = make_scaler(make_runpod())
    enqueue(30)
    if fault == "provider":
        fake_runpod.inject("http500", operation="pods")
    else:
        scaler.depth = RedisDepth.from_url(f"redis://127.0.0.1:{free_port()}/0", "gpu-long")
    record = scaler.tick()
    assert record["outcome"] == "held" and record["decision"]["held"]
    assert record["decision"]["create"] == [] and fake_runpod.live_pods() == []
    assert record["decision"]["failures"]
    if fault == "broker":
        assert record["observation"]["waiting"] is None  # never zero
        assert record["observation"]["failed_sources"] == ["broker"]


def test_dry_run_decides_and_records_but_creates_nothing(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod(), dry_run=True)
    enqueue(12)
    record = scaler.tick()
    assert record["outcome"] == "dry_run" and len(record["decision"]["create"]) == 3
    assert fake_runpod.live_pods() == [] and fake_runpod.calls["create"] == 0
    assert scaler.store.records(1)[0]["outcome"] == "dry_run"


def test_scale_down_after_the_idle_window(fake_runpod, make_runpod, make_scaler, enqueue, redis_client) -> None:
    scaler = make_scaler(make_runpod(), idle_s=0.6)
    enqueue(12)
    scaler.tick()
    assert len(fake_runpod.live_pods()) == 3
    redis_client.delete("gpu-long")  # the queue empties
    record = scaler.tick()
    assert record["decision"]["terminate"] == [] and "left" in record["decision"]["reason"]
    time.sleep(0.65)
    record = scaler.tick()
    assert len(record["executed"]["terminated"]) == 3 and fake_runpod.live_pods() == []


def test_a_failed_terminate_is_retried_and_still_counted(fake_runpod, make_runpod, make_scaler, enqueue,
                                                         redis_client) -> None:
    scaler = make_scaler(make_runpod(), idle_s=0, max_workers=1)
    enqueue(1)
    scaler.tick()
    redis_client.delete("gpu-long")
    fake_runpod.inject("http500", operation="terminate")
    record = scaler.tick()  # idle_s=0: the unregistered pod goes at once, but the call fails
    assert record["decision"]["terminate"] and record["executed"]["terminated"] == []
    assert len(fake_runpod.live_pods()) == 1
    assert [r.status for r in scaler.store.load().workers.values()] == ["terminating"]
    enqueue(5)
    record = scaler.tick()  # the pod being terminated still counts: max_workers=1 allows no create
    assert record["executed"]["created"] == [] and fake_runpod.live_pods() == []
    assert len(record["executed"]["terminated"]) == 1


def test_metrics_follow_the_ticks(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod(), max_step=2)
    enqueue(20)
    scaler.tick()
    text = generate_latest(metrics.REGISTRY).decode()
    assert "audiobook_scaler_waiting 20.0" in text
    assert "audiobook_scaler_target 3.0" in text
    assert 'audiobook_scaler_cap_hits_total{cap="max_step"}' in text
    assert metrics.REGISTRY.get_sample_value("audiobook_scaler_usd_per_hour") == 0.0  # before the creates
    scaler.tick()
    assert metrics.REGISTRY.get_sample_value("audiobook_scaler_usd_per_hour") == pytest.approx(0.68)
    assert metrics.REGISTRY.get_sample_value("audiobook_scaler_workers", {"state": "booting"}) == 2
