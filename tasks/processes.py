"""Process helpers shared by the demo, the tests and bench/: free ports, private redis-servers and RabbitMQ
nodes, stopping a session."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 3.0) -> int:
    """The HTTP status a GET of `url` answers without credentials; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def stop_process_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process's whole session (a warm shutdown), then SIGKILL whatever is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


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


def redis_server_binary() -> str:
    """The redis-server on PATH (it also runs sentinels with `--sentinel`); a clear error if there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisServer:
    """A private redis-server on a free port (the demo without a Redis; tests that kill the broker)."""

    def __init__(self, directory: Path, appendonly: bool = True, env: Mapping[str, str] | None = None) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.appendonly = appendonly
        self.env = None if env is None else dict(env)
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
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=self.env)
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


class RabbitServer:
    """A private RabbitMQ node on free ports, with its own data, logs and config under `directory`.

    Tests that need a broker setting the machine's RabbitMQ cannot take per queue (3.10: `consumer_timeout` is
    server-wide) start one. `tick_s` makes the node check consumer timeouts that often (RabbitMQ: every minute).
    """

    def __init__(self, directory: Path, consumer_timeout_ms: int | None = None, tick_s: float | None = None) -> None:
        # As root, /usr/sbin/rabbitmq-server switches to the rabbitmq user, who cannot write our directory.
        binary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if os.geteuid() != 0 or not os.path.exists(binary):
            binary = shutil.which("rabbitmq-server") or ""
        if not binary:
            raise RuntimeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        self.binary = binary
        self.directory = directory
        self.consumer_timeout_ms = consumer_timeout_ms
        self.tick_s = tick_s
        self.port = free_port()
        self.dist_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _write_config(self) -> dict[str, str]:
        d = self.directory
        for sub in ("mnesia", "log", "home"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        lines = [f"listeners.tcp.default = 127.0.0.1:{self.port}", "loopback_users = none"]
        if self.consumer_timeout_ms is not None:
            lines.append(f"consumer_timeout = {self.consumer_timeout_ms}")
        (d / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        tick = [f"{{channel_tick_interval, {int(self.tick_s * 1000)}}}"] if self.tick_s else []
        (d / "advanced.config").write_text(f"[{{rabbit, [{', '.join(tick)}]}}].\n")
        (d / "enabled_plugins").write_text("[].\n")
        return {"HOME": str(d / "home"), "RABBITMQ_NODENAME": f"audiobook-{self.port}@localhost",
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(d / "mnesia"), "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"), "RABBITMQ_PID_FILE": str(d / "pid")}

    def start(self, timeout: float = 90, wait: bool = True) -> RabbitServer:
        """Start the node; with `wait`, return once it accepts AMQP connections (else call wait_ready)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")} | self._write_config()
        self.proc = subprocess.Popen([self.binary], env=env, cwd=self.directory, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}; see {self.directory}/log")
            return _amqp_answers(self.url)

        wait_for(ready, timeout, interval=0.5, what=f"rabbitmq-server on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace=15)
            self.proc = None


def _amqp_answers(url: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=1) as conn:
            conn.connect()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False
