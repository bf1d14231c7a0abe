"""Real processes for tests: `celery worker` subprocesses (and the shared helpers of tasks.processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tasks.processes import RedisServer, free_port, stop_process_group, wait_for

__all__ = ["ROOT", "CeleryWorker", "RedisServer", "free_port", "stop_process_group", "wait_for"]

ROOT = Path(__file__).resolve().parents[2]


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
