"""Drain with a real worker busy on a long chapter: the chapter finishes, then the worker goes, and nothing
is redelivered."""

from __future__ import annotations

import dataclasses
import time

import pytest

from scaler.workers import inspect_workers
from tests.support.processes import wait_for

LONG_TEXT = "The quick brown fox jumps over the lazy dog, and the dog does not mind at all. " * 320  # ~25,000 chars


@pytest.mark.slow
def test_a_busy_worker_finishes_its_chapter_before_it_is_terminated(local_provider, make_scaler, enqueue,
                                                                     client_app, redis_client) -> None:
    scaler = make_scaler(local_provider, max_workers=1, idle_s=0, boot_timeout_s=120, inspect_timeout_s=1.0)
    [task_id] = enqueue(1, text=LONG_TEXT)
    record = scaler.tick()
    [created] = record.executed.created
    name = created.name
    wait_for(lambda: any(w.active for w in inspect_workers(client_app, "gpu-long", 0.5).values()), 120, 0.3,
             "the worker to start the chapter")
    result = client_app.AsyncResult(task_id)
    assert not result.ready()

    # The operator lowers the cap to 0: the busy worker must go, but only after its chapter.
    scaler.config = dataclasses.replace(scaler.config, max_workers=0)
    record = scaler.tick()
    assert record.decision.drain == (name,) and record.decision.terminate == ()
    assert record.decision.bound_by == "max_workers"
    [later_id] = enqueue(1)  # arrives while draining: it must wait in the queue, untaken

    ticks_while_busy = 0
    states_seen = set()
    deadline = time.monotonic() + 180
    while True:
        assert time.monotonic() < deadline, "the drained worker was never terminated"
        ready_before = result.ready()
        record = scaler.tick()
        if record.executed.terminated:
            break
        assert record.decision.terminate == ()
        assert [i.name for i in local_provider.list_instances()] == [name]
        if not ready_before:
            ticks_while_busy += 1
            # a worker too busy to answer in time reads "silent": never terminated before the boot timeout
            [state] = record.observation.states
            states_seen.add(state)
        time.sleep(0.3)
    assert record.executed.terminated == (name,)
    assert result.ready(), "the worker was terminated before its chapter finished"
    assert result.get(timeout=10)["chapter_id"]
    assert ticks_while_busy >= 1 and "draining" in states_seen and states_seen <= {"draining", "silent"}
    wait_for(lambda: local_provider.list_instances() == [], 30, 0.2, "the worker process to exit")

    log = (local_provider.directory / f"{name}.log").read_text()
    assert log.count(f"audiobook.synthesize_chapter[{task_id}] received") == 1
    assert later_id not in log  # the drained worker took nothing new
    assert redis_client.hlen("unacked") == 0  # nothing left to redeliver
    assert redis_client.llen("gpu-long") == 1  # the later chapter waits, in order
    assert client_app.AsyncResult(later_id).state == "PENDING"
