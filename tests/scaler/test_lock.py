"""Single flight on the real Redis lock: two ticks at once never create twice; a dead holder's lock expires."""

from __future__ import annotations

import threading
import time

from scaler.policy import table_workers
from tests.support.processes import wait_for


def _run_together(*ticks):
    barrier = threading.Barrier(len(ticks))
    results: list[dict] = [{} for _ in ticks]

    def run(i: int) -> None:
        barrier.wait()
        results[i] = ticks[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ticks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_ticks_at_once_create_once(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    first = make_scaler(make_runpod(), max_step=50, max_usd_per_hour=100)
    second = make_scaler(make_runpod(), max_step=50, max_usd_per_hour=100)
    queued = 0
    for round_ in range(4):
        queued += len(enqueue(12 + 25 * round_))
        fake_runpod.inject("slow", operation="pods", times=2, delay_s=0.3)  # the holder is slow to list
        outcomes = sorted(r.outcome for r in _run_together(first.tick, second.tick))
        assert outcomes == ["ok", "skipped"], outcomes
        assert len(fake_runpod.live_pods()) == table_workers(queued)


def test_a_dead_holders_lock_expires(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    scaler = make_scaler(make_runpod())
    dead = scaler.store.lock(1.0)
    assert dead.acquire(blocking=False)  # a holder that dies without releasing
    enqueue(3)
    assert scaler.tick().outcome == "skipped"
    assert fake_runpod.live_pods() == []
    time.sleep(1.1)
    record = scaler.tick()
    assert record.outcome == "ok" and len(fake_runpod.live_pods()) == 1


def test_a_tick_that_lost_its_lock_stops_acting(fake_runpod, make_runpod, make_scaler, enqueue) -> None:
    slow = make_scaler(make_runpod(), max_step=10)
    other = make_scaler(make_runpod(), max_step=10)
    enqueue(30)  # table: 4
    fake_runpod.inject("slow", operation="create", times=10, delay_s=0.6)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(record=slow.tick()))
    thread.start()
    wait_for(lambda: fake_runpod.calls["create"] >= 1, 10, 0.01, "the first create")
    other.store.client.delete(other.store.key("lock"))  # the slow tick's lock expires mid-create
    record = other.tick()
    thread.join(30)
    assert result["record"].outcome == "lock_lost"
    assert record.outcome == "ok"
    assert record.observation.states == {"booting": 1}  # the slow tick's reservation was counted
    assert len(fake_runpod.live_pods()) == 4
