"""RunPod end to end on loopback: the fake's pods run real `celery` workers from their docker args and env, so
the queue goes to pods, chapters get done, and the pool is drained and terminated back to zero."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from tests.fakes.runpod_api import FakePod
from tests.support.processes import ROOT, stop_process_group

CHAPTER = "A chapter read by a pod on loopback. It has two sentences, which is plenty."
MAX_WORKERS = 3


@pytest.mark.slow
def test_queue_to_pods_to_chapters_done_to_scale_down(fake_runpod, make_runpod, make_scaler, enqueue, worker_env,
                                                       client_app, redis_url, tmp_path) -> None:
    processes: dict[str, subprocess.Popen] = {}

    def boot(pod: FakePod) -> None:  # what the pod's container runs
        argv = shlex.split(pod.docker_args)
        assert argv[:2] == ["celery", "-A"]
        log = open(tmp_path / f"{pod.name}.log", "ab")  # noqa: SIM115 - closed with the process
        processes[pod.id] = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, env=worker_env | pod.env,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def shut_down(pod: FakePod) -> None:
        proc = processes.get(pod.id)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)

    fake_runpod.on_create, fake_runpod.on_terminate = boot, shut_down
    fake_runpod.boot_s = 1.0
    provider = make_runpod(env={"CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url})
    scaler = make_scaler(provider, max_workers=MAX_WORKERS, max_step=3, idle_s=2.0, boot_timeout_s=120,
                         inspect_timeout_s=1.0)
    try:
        results = [client_app.AsyncResult(i) for i in enqueue(12, text=CHAPTER)]
        started = time.monotonic()
        timeline = []
        while True:
            now = time.monotonic() - started
            assert now < 240, "\n".join(timeline)
            record = scaler.tick()
            pods = fake_runpod.live_pods()
            assert len(pods) <= MAX_WORKERS
            done = sum(r.ready() for r in results)
            timeline.append(f"t={now:5.1f}s pending={record.observation.pending} done={done} "
                            f"pods={len(pods)} {record.observation.states}")
            if done == len(results) and not pods:
                break
            time.sleep(1.0)
        print("\nrunpod-on-loopback timeline:\n" + "\n".join(timeline))
        assert all(r.successful() for r in results)
        used = {r.get()["usage"]["worker"].split("@")[0] for r in results}
        assert used and all(node.startswith("gpu-test-gpu-") for node in used)
        assert fake_runpod.calls["create"] >= 2 and fake_runpod.calls["terminate"] >= 2
    finally:
        for proc in processes.values():
            stop_process_group(proc, grace=10)
