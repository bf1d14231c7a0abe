"""The local provider keeps the books as RunPod's does: a worker process that died is gone at the next tick, and
the workers the local scaler started cannot outlive the control plane (honcho stopped with Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT, stop_process_group, wait_for


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
def test_a_worker_that_died_while_booting_is_gone_at_the_next_tick(local_provider, make_scaler, enqueue) -> None:
    scaler = make_scaler(local_provider, max_workers=2, boot_timeout_s=900)
    enqueue(15)  # table: 3, capped at 2
    scaler.tick()
    names = set(scaler.store.load().workers)
    assert len(names) == 2
    victim = sorted(names)[0]
    pid = json.loads((local_provider.directory / f"{victim}.json").read_text())["pid"]
    os.killpg(pid, signal.SIGKILL)  # dies mid-boot, before any listing saw it
    wait_for(lambda: not _alive(pid), 10, 0.1, "the worker to die")
    scaler.tick()
    assert victim not in scaler.store.load().workers, "a dead worker is still counted as booting"
    assert len(scaler.store.load().workers) == 2  # and it was replaced: 15 chapters wait


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stopping_honcho_stops_the_workers_the_local_scaler_started(worker_env, enqueue, tmp_path) -> None:
    directory = Path(worker_env["SCALER_LOCAL_DIR"])
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "control: celery -A tasks worker -Q control -c 2 -n control@%h --loglevel INFO\n"
        f"beat: celery -A tasks beat --loglevel INFO --schedule {tmp_path / 'beat-schedule'} --max-interval 1\n")
    env = worker_env | {"SCALER_PROVIDER": "local", "SCALER_NAME_PREFIX": "test-honcho", "SCALER_INTERVAL_SECONDS": "1",
                        "SCALER_LOCAL_LEASE_SECONDS": "4", "SCALER_MAX_WORKERS": "2", "SCALER_IDLE_SECONDS": "600",
                        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    enqueue(6)  # table: one worker
    log = open(tmp_path / "honcho.log", "ab")  # noqa: SIM115 - closed below
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pids: list[int] = []
    try:
        def started() -> list[int]:
            found = [json.loads(p.read_text())["pid"] for p in directory.glob("test-honcho-*.json")]
            return found if found and all(_alive(pid) for pid in found) else []

        pids = wait_for(started, 120, 0.5, "the local scaler to start a worker")
        os.kill(honcho.pid, signal.SIGINT)  # Ctrl-C
        honcho.wait(60)
        wait_for(lambda: not any(_alive(pid) for pid in pids), 60, 0.5,
                 "the workers the scaler started to stop with the control plane")
    finally:
        if honcho.poll() is None:
            stop_process_group(honcho, grace=10)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        log.close()
