"""Real processes for tests: throwaway redis-servers and `celery worker` subprocesses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from tasks.processes import free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll until `predicate()` is truthy; returns its value or raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A private redis-server on a free port (for tests that kill or restart the broker)."""

    def __init__(self, directory: Path, appendonly: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), 10, what=f"redis-server on port {self.port}")
        return self

    def kill(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace=5)
            self.proc = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


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
