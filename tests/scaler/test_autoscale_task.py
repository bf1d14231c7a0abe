"""The beat task `audiobook.autoscale`: light imports, routing, and the real beat -> control worker -> pool path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from scaler.observe import QueueDepth, RedisDepth
from tests.support.processes import ROOT, stop_process_group, wait_for


def test_the_beat_task_imports_no_torch_transformers_or_runpod() -> None:
    code = ("import sys, tasks.autoscale\n"
            "from scaler.tick import Scaler\n"
            "from tasks import app\n"
            "Scaler.from_settings(app)\n"  # the local provider, as the control worker builds it
            "heavy = [m for m in ('torch', 'transformers', 'runpod') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert 'audiobook.autoscale' in app.tasks\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"})
    assert done.returncode == 0, done.stderr


def test_beat_sends_autoscale_to_the_control_queue_with_an_expiry() -> None:
    import celeryconfig
    from settings import QUEUE_CONTROL
    from tasks import app

    entry = celeryconfig.beat_schedule["autoscale"]
    assert entry["task"] == "audiobook.autoscale"
    assert entry["options"]["queue"] == QUEUE_CONTROL
    assert entry["options"]["expires"] < entry["schedule"]
    assert "tasks.autoscale" in app.conf.include
    assert app.amqp.router.route({}, "audiobook.autoscale")["queue"].name == QUEUE_CONTROL


@pytest.mark.slow
def test_beat_and_a_control_worker_run_the_pool(start_worker, worker_env, local_provider, enqueue, client_app,
                                                 redis_url, tmp_path: Path) -> None:
    scaler_env = {"SCALER_INTERVAL_SECONDS": "1", "SCALER_IDLE_SECONDS": "2", "SCALER_MAX_WORKERS": "1",
                  "SCALER_MIN_WORKERS": "0", "SCALER_NAME_PREFIX": "test-local"}
    start_worker(queues="control", name="control", env=scaler_env)
    enqueue(3)
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "beat", "-s", str(tmp_path / "beat-schedule"),
         "--max-interval", "1", "--loglevel", "INFO"],
        cwd=ROOT, env=worker_env | scaler_env, stdout=open(tmp_path / "beat.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True)
    client = redis.Redis.from_url(redis_url)
    key = "scaler:test-local:decisions"
    try:
        def records() -> list[dict]:
            return [json.loads(raw) for raw in client.lrange(key, 0, -1)]

        wait_for(lambda: any((r.get("executed") or {}).get("created") for r in records()), 60, 0.5, "a created worker")
        gpu_queue = RedisDepth(client, "gpu-long", {})
        wait_for(lambda: gpu_queue.read() == QueueDepth(waiting=0, in_flight=0), 120, 0.5, "the chapters to be done")
        wait_for(lambda: any((r.get("executed") or {}).get("terminated") for r in records()), 60, 0.5,
                 "the pool to go back to zero")
        wait_for(lambda: local_provider.list_instances() == [], 30, 0.5, "no worker left")
        history = records()
        assert len(history) >= 5  # a tick a second
        assert all(r["provider"] == "local" for r in history)
        assert max(len(r["observation"]["workers"]) for r in history if r.get("observation")) == 1
    finally:
        stop_process_group(beat, grace=10)
        client.close()
