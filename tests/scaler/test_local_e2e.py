"""Local provider end to end: 30 chapters in, the pool grows within its caps, the queue drains, and after the
idle window the pool is back at the minimum."""

from __future__ import annotations

import time

import pytest

CHAPTER = ("It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin "
           "nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors.")
MAX_WORKERS = 3


@pytest.mark.slow
def test_local_pool_scales_up_drains_the_queue_and_returns_to_the_minimum(local_provider, make_scaler, enqueue,
                                                                           client_app, redis_client) -> None:
    scaler = make_scaler(local_provider, min_workers=1, max_workers=MAX_WORKERS, max_step=2, idle_s=3.0,
                         boot_timeout_s=120, inspect_timeout_s=1.0)
    started = time.monotonic()
    results = [client_app.AsyncResult(i) for i in enqueue(30, text=CHAPTER)]
    timeline: list[str] = []
    peak = 0
    drained_at = back_at = None
    while back_at is None:
        now = time.monotonic() - started
        assert now < 300, "\n".join(timeline)
        record = scaler.tick()
        pool = local_provider.list_instances()
        peak = max(peak, len(pool))
        assert len(pool) <= MAX_WORKERS
        obs, executed = record.observation, record.executed
        done = sum(r.ready() for r in results)
        timeline.append(
            f"t={now:5.1f}s waiting={obs.waiting:2} in_flight={obs.in_flight} done={done:2} "
            f"pool={len(pool)} {obs.states} +{len(executed.created)} drain {len(executed.drained)} "
            f"terminate {len(executed.terminated)}")
        if drained_at is None and done == len(results):
            drained_at = now
        if drained_at is not None and len(pool) == 1 and obs.states == {"idle": 1}:
            back_at = now
        time.sleep(1.0)
    print("\nlocal end-to-end timeline:\n" + "\n".join(timeline))
    print(f"summary: peak pool {peak} (max {MAX_WORKERS}), 30 chapters done at {drained_at:.1f}s, "
          f"back to the minimum (1) at {back_at:.1f}s")
    assert peak == MAX_WORKERS
    assert all(r.successful() for r in results)
    assert len({r.get()["chapter_id"] for r in results}) == 30
    workers_used = {r.get()["usage"]["worker"] for r in results}
    assert len(workers_used) >= 2  # the work was shared
    assert redis_client.llen("gpu-long") == 0 and redis_client.hlen("unacked") == 0
    assert back_at - drained_at >= 3.0  # not before the idle window
