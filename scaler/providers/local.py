"""Local worker processes: `celery -A tasks worker -Q gpu-long -c 1` subprocesses on this machine.

Each runs in its own session and is tracked by a pid file under SCALER_LOCAL_DIR, so a restarted scaler
finds it again; a pid file whose process is gone is forgotten, and a lookup of it says gone. The price is
0 USD/h. With a lease key, each worker watches the lease the scaler's ticks renew and stops when it lapses:
the workers cannot outlive the control plane that started them (tasks.runtime runs the watch).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from scaler.errors import ProviderError
from scaler.providers.base import (
    MARKER_ENV,
    Instance,
    Provider,
    check_name,
    marker,
    marker_deployment,
    worker_argv,
)
from settings import WORKER_PRICE_ENV

GPU_TYPE = "local"
#: Environment variable naming the Redis key of the scaler's lease (tasks.runtime watches it).
LEASE_ENV = "AUDIOBOOK_SCALER_LEASE"

log = logging.getLogger(__name__)

# Popen objects of the workers this process started, so they are reaped (no zombies) when they exit.
_children: dict[int, subprocess.Popen[bytes]] = {}


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/pid/stat), None if gone or a zombie.

    Kept next to a saved pid (the pid files here, the local stack's state) so a recycled pid is never
    mistaken for the process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


class LocalProvider(Provider):
    """Worker subprocesses with the scaler's environment, so they use the same broker, model and storage."""

    name = "local"

    def __init__(self, directory: str | Path, name_prefix: str, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, python: str = sys.executable, stop_wait_s: float = 3.0,
                 kill_after_s: float = 30.0, clock: Callable[[], float] = time.time, deployment: str = "default",
                 lease_key: str | None = None) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.name_prefix = check_name(name_prefix)
        self.deployment = check_name(deployment)
        self.marker = marker(name_prefix, deployment)
        self.env = dict(os.environ if env is None else env) | {MARKER_ENV: self.marker}
        self.env.pop(LEASE_ENV, None)
        if lease_key:
            self.env[LEASE_ENV] = lease_key
        self.cwd = str(cwd or os.getcwd())
        self.python = python
        self.stop_wait_s = stop_wait_s
        self.kill_after_s = kill_after_s
        self.clock = clock

    def gpu_types(self) -> list[str]:
        return [GPU_TYPE]

    def price(self, gpu_type: str) -> float:
        return 0.0

    def list_instances(self) -> list[Instance]:
        found = []
        for path in sorted(self.directory.glob(f"{self.name_prefix}-*.json")):
            record = self._read(path)
            if record is None or not self._alive(record):
                self._forget(path, record)
                continue
            found.append(self._instance(record))
        return found

    def get_instance(self, instance_id: str) -> Instance | None:
        record = self._read(self.directory / f"{check_name(instance_id)}.json")
        return self._instance(record) if record is not None and self._alive(record) else None

    def create(self, name: str, gpu_type: str) -> Instance:
        check_name(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.directory / f"{name}.log", "ab") as log_file:
                # The worker's own price goes in its env, so its chapters bill at it (local workers cost 0).
                env = self.env | {WORKER_PRICE_ENV: str(self.price(gpu_type))}
                proc = subprocess.Popen([self.python, "-m", *worker_argv(name)], cwd=self.cwd, env=env,
                                        stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        except OSError as exc:
            raise ProviderError(f"start worker {name}: {exc}") from None
        _children[proc.pid] = proc
        created = self.clock()
        record = {"name": name, "pid": proc.pid, "start_time": process_start_time(proc.pid), "created_at": created,
                  "marker": self.marker}
        path = self.directory / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
        return self._instance(record)

    def terminate(self, instance_id: str) -> None:
        """SIGTERM the worker's session (a warm shutdown: it is drained); SIGKILL if still there after
        `kill_after_s` on a later call."""
        path = self.directory / f"{check_name(instance_id)}.json"
        record = self._read(path)
        if record is None or not self._alive(record):
            self._forget(path, record)
            return
        now = self.clock()
        first = record.get("terminate_at")
        sig = signal.SIGKILL if first is not None and now - first >= self.kill_after_s else signal.SIGTERM
        try:
            os.killpg(record["pid"], sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            raise ProviderError(f"terminate {instance_id}: {exc}") from None
        if first is None:
            path.write_text(json.dumps(record | {"terminate_at": now}))
        deadline = time.monotonic() + self.stop_wait_s
        while time.monotonic() < deadline:
            self._reap(record["pid"])
            if not self._alive(record):
                self._forget(path, record)
                return
            time.sleep(0.1)

    # --- helpers --------------------------------------------------------------------------------------
    def _instance(self, record: dict) -> Instance:
        return Instance(id=record["name"], name=record["name"], usd_per_hour=0.0, status="running",
                        gpu_type=GPU_TYPE, created_at=record["created_at"],
                        deployment=marker_deployment(record.get("marker"), self.name_prefix))

    def _read(self, path: Path) -> dict | None:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or "pid" not in record or "name" not in record:
            return None
        if str(record.get("marker", "")).partition("/")[0] != self.name_prefix:
            return None
        return record

    def _alive(self, record: dict) -> bool:
        pid = int(record["pid"])
        self._reap(pid)
        started = process_start_time(pid)
        return started is not None and started == record.get("start_time")

    @staticmethod
    def _reap(pid: int) -> None:
        proc = _children.get(pid)
        if proc is not None and proc.poll() is not None:
            _children.pop(pid, None)

    @staticmethod
    def _forget(path: Path, record: dict | None) -> None:
        # No signal here: the pid may already belong to another process.
        path.unlink(missing_ok=True)


def watch_lease(lease_alive: Callable[[], bool], on_lapse: Callable[[], None], poll_s: float = 2.0,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Run in a local worker: return after calling `on_lapse` once the scaler's lease is gone on two reads in a
    row. A read that fails (Redis away) counts as alive: only a confirmed lapse stops the worker."""
    misses = 0
    while True:
        try:
            alive = lease_alive()
        except Exception:  # noqa: BLE001 - unknown is not gone
            alive = True
        misses = 0 if alive else misses + 1
        if misses >= 2:
            on_lapse()
            return
        sleep(poll_s)


def stop_own_session() -> None:
    """What a lapsed lease does: SIGTERM to this worker's whole session (it was started as its leader), so its
    pool child stops too; a chapter in hand goes back to the queue (task_reject_on_worker_lost)."""
    log.warning("the scaler's lease lapsed (no tick renewed it: the control plane is gone): stopping this worker")
    os.killpg(os.getpgrp(), signal.SIGTERM)
