"""Real processes for tests: `celery worker` subprocesses (and the shared helpers of tasks.processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from celery.states import READY_STATES

from tasks.processes import RabbitServer, RedisServer, free_port, stop_process_group, wait_for

__all__ = ["FAST_RECOVERY", "ROOT", "CeleryBeat", "CeleryWorker", "RabbitServer", "RedisServer", "free_port",
           "result_of", "stop_process_group", "wait_for"]

ROOT = Path(__file__).resolve().parents[2]
#: Environment of a quick recovery: 3 s leases, a reaper (and a dry-run scaler) pass every 1.5 s.
FAST_RECOVERY = {"AUDIOBOOK_LEASE_S": "3", "SCALER_INTERVAL_SECONDS": "1.5", "SCALER_DRY_RUN": "1"}


def result_of(app, task_id: str, timeout: float) -> Any:  # noqa: ANN001, ANN401
    """A task's result, polled from the backend: no pub/sub subscription that could outlive a private Redis."""
    meta = wait_for(lambda: (m := app.backend.get_task_meta(task_id))["status"] in READY_STATES and m, timeout,
                    interval=0.2, what=f"task {task_id}")
    if meta["status"] != "SUCCESS":
        raise AssertionError(f"task {task_id} ended {meta['status']}: {meta.get('result')!r}")
    return meta["result"]


class CeleryWorker:
    """`celery -A tasks worker` as a real subprocess in its own session."""

    def __init__(self, env: dict[str, str], queues: str, hostname: str, concurrency: int = 1,
                 pool: str = "prefork", log_dir: Path | None = None) -> None:
        self.env = env
        self.hostname = hostname
        self.log_path = (log_dir or Path(env.get("TMPDIR", "/tmp"))) / f"{hostname.split('@')[0]}.log"
        self.command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", queues,
                        "-c", str(concurrency), "-P", pool, "-n", hostname, "--loglevel", "INFO",
                        "--without-mingle", "--without-gossip"]
        self.proc: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, app, timeout: float = 90) -> None:  # noqa: ANN001
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.hostname} exited: {self.tail()}")
            return bool(app.control.ping(destination=[self.hostname], timeout=0.5))

        wait_for(ready, timeout, interval=0.2, what=f"worker {self.hostname} to answer ping")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 30.0) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace)
            self.proc = None
            self.log.close()


class CeleryBeat:
    """`celery -A tasks beat` as a real subprocess, with its schedule file in a private directory."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.log_path = directory / "beat.log"
        self.command = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
                        "--schedule", str(directory / "beat-schedule"), "--pidfile", str(directory / "beat.pid")]
        self.proc: subprocess.Popen | None = None

    def start(self) -> CeleryBeat:
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, 10)
            self.proc = None
            self.log.close()
