"""A real Redis Sentinel setup on free ports: a master, a replica and two sentinels (`redis-server --sentinel`).

The fault is the master's death (SIGKILL), not `SENTINEL FAILOVER`: a forced failover leaves the old master
taking writes until a sentinel reconfigures it (up to its 10 s INFO period), and writes in that window are
dropped when it resyncs; a dead master has no such window.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import redis

from tasks.processes import free_port, redis_server_binary, stop_process_group, wait_for


class SentinelCluster:
    """Master and replica with AOF on, watched by two sentinels under `master_name` (quorum 1)."""

    def __init__(self, directory: Path, master_name: str = "books") -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.master_name = master_name
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port(), free_port()]
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        """Celery's form: every sentinel, `;`-separated; the master name goes in the transport options."""
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def _start(self, args: list[str], name: str) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.procs.append(subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))
        log.close()

    def start(self) -> SentinelCluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        master, replica = self.data_ports
        for index, port in enumerate(self.data_ports):
            data = self.directory / f"redis-{port}"
            data.mkdir()
            args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                    "--dir", str(data)]
            self._start(args + (["--replicaof", "127.0.0.1", str(master)] if index else []), f"redis-{port}")
        replica_client = redis.Redis(port=replica)
        wait_for(lambda: _info(replica_client).get("master_link_status") == "up", 20, what="the replica to sync")
        # Staggered detection: the first sentinel to see the master down asks the other for its vote and wins
        # the election at once, instead of both standing and retrying after twice the failover timeout.
        for port, down_after_ms in zip(self.sentinel_ports, (1500, 5000), strict=True):
            config = self.directory / f"sentinel-{port}.conf"  # a sentinel rewrites its own configuration
            config.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                              f"sentinel monitor {self.master_name} 127.0.0.1 {master} 1\n"
                              f"sentinel down-after-milliseconds {self.master_name} {down_after_ms}\n"
                              f"sentinel failover-timeout {self.master_name} 10000\n")
            self._start([str(config), "--sentinel"], f"sentinel-{port}")
        for port in self.sentinel_ports:
            sentinel = redis.Redis(port=port, decode_responses=True)
            wait_for(lambda s=sentinel: self._knows_replica(s), 30, what=f"sentinel {port} to see the replica")
        return self

    def _knows_replica(self, sentinel: redis.Redis) -> bool:
        try:
            replicas = sentinel.sentinel_slaves(self.master_name)
        except redis.RedisError:
            return False
        return any(r.get("is_slave") and not r.get("is_sdown") and r.get("master-link-status") == "ok"
                   for r in replicas)

    def master_port(self) -> int:
        sentinel = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        return int(sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)[1])

    def kill_master(self) -> int:
        """SIGKILL the master's process; returns the promoted replica's port once every sentinel and the
        replica itself agree on it (the sentinels notice after down-after-milliseconds)."""
        old = self.master_port()
        proc = self.procs[self.data_ports.index(old)]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        new = next(port for port in self.data_ports if port != old)

        def promoted() -> bool:
            try:
                ports = {int(redis.Redis(port=p, decode_responses=True).execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)[1]) for p in self.sentinel_ports}
            except redis.RedisError:
                return False
            return ports == {new} and _info(redis.Redis(port=new)).get("role") == "master"

        wait_for(promoted, 60, interval=0.2, what="the sentinels to promote the replica")
        return new

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process_group(proc, grace=5)
        self.procs.clear()


def _info(client: redis.Redis) -> dict:
    try:
        return {k: str(v) for k, v in client.info("replication").items()}
    except redis.RedisError:
        return {}
