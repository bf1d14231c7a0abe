"""`audiobook scaler status` and `audiobook scaler tick`, as a user runs them (the console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.processes import ROOT

AUDIOBOOK = str(Path(sys.executable).parent / "audiobook")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUDIOBOOK, "scaler", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_dry_run_tick_and_status_with_the_local_provider(worker_env, enqueue) -> None:
    env = worker_env | {"SCALER_NAME_PREFIX": "cli-local"}
    enqueue(12)
    done = _run(env, "tick", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["outcome"] == "dry_run" and record["provider"] == "local"
    assert record["observation"]["waiting"] == 12 and len(record["decision"]["create"]) == 3
    assert not list(Path(worker_env["SCALER_LOCAL_DIR"]).glob("*.json"))  # nothing started

    status = _run(env, "status")
    assert status.returncode == 0, status.stderr
    assert "outcome=dry_run" in status.stdout and "pending 12: table wants 3" in status.stdout
    assert "NAME" in status.stdout and "0 workers, 0.000 USD/h" in status.stdout
    assert json.loads(_run(env, "status", "--json").stdout)["ts"] == record["ts"]


def test_tick_with_runpod_prints_the_decision_and_no_secret(worker_env, enqueue, fake_runpod, tmp_path) -> None:
    password = "pod-broker-password-42"
    env = worker_env | {
        "SCALER_PROVIDER": "runpod", "SCALER_NAME_PREFIX": "cli-gpu", "RUNPOD_API_KEY": fake_runpod.api_key,
        "RUNPOD_API_BASE_URL": fake_runpod.url, "RUNPOD_WORKER_BROKER_URL": f"redis://:{password}@10.1.1.1:6379/0",
        "HOME": str(tmp_path / "home")}
    enqueue(5)
    done = _run(env, "tick")
    assert done.returncode == 0, done.stderr
    assert "create NVIDIA RTX A4000 at 0.340 USD/h" in done.stdout
    [pod] = fake_runpod.live_pods()
    assert pod.env["CELERY_BROKER_URL"].endswith(f"{password}@10.1.1.1:6379/0")
    status = _run(env, "status")
    assert pod.name in status.stdout and "booting" in status.stdout and "0.340" in status.stdout
    for output in (done.stdout, done.stderr, status.stdout, status.stderr):
        assert password not in output and fake_runpod.api_key not in output


def test_state_outside_redis_is_a_one_line_error(worker_env) -> None:
    env = worker_env | {"CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//", "CELERY_RESULT_BACKEND": ""}
    done = _run(env, "tick", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip() == ("audiobook: error: the scaler keeps its state in Redis: CELERY_BROKER_URL or "
                                   "CELERY_RESULT_BACKEND must be a redis://, rediss:// or sentinel:// URL")
