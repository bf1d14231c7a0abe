"""The local provider: real `celery -A tasks worker` subprocesses tracked by pid files."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from scaler.providers.base import MARKER_ENV
from scaler.providers.local import LEASE_ENV, LocalProvider, watch_lease
from scaler.workers import inspect_workers
from settings import WORKER_PRICE_ENV
from tests.support.processes import ROOT, wait_for


def _answering(app, names: set[str]) -> bool:
    found = {node.split("@")[0] for node in inspect_workers(app, "gpu-long", 0.5)}
    return {f"gpu-{n}" for n in names} <= found


@pytest.mark.slow
def test_local_workers_are_tracked_found_again_and_forgotten(worker_env, client_app) -> None:
    directory = Path(worker_env["SCALER_LOCAL_DIR"])
    provider = LocalProvider(directory, "test-local", env=worker_env, cwd=ROOT, stop_wait_s=20)
    first = provider.create("test-local-aaaa", "local")
    second = provider.create("test-local-bbbb", "local")
    try:
        wait_for(lambda: _answering(client_app, {first.name, second.name}), 120, 0.5, "both workers to answer")
        workers = inspect_workers(client_app, "gpu-long", 1.0)
        queues = client_app.control.inspect(timeout=1.0).active_queues()
        stats = client_app.control.inspect(timeout=1.0).stats()
        for node in workers:
            assert [q["name"] for q in queues[node]] == ["gpu-long"]
            assert stats[node]["pool"]["max-concurrency"] == 1
        record = json.loads((directory / "test-local-aaaa.json").read_text())
        assert record["marker"] == "test-local/default"
        environ = open(f"/proc/{record['pid']}/environ", "rb").read().split(b"\0")
        assert environ.count(f"{MARKER_ENV}=test-local/default".encode()) == 1
        assert f"{WORKER_PRICE_ENV}=0.0".encode() in environ  # told its price (local workers cost nothing)

        # a restarted scaler finds them through the pid files
        again = LocalProvider(directory, "test-local", env=worker_env)
        assert sorted(i.name for i in again.list_instances()) == ["test-local-aaaa", "test-local-bbbb"]
        assert all(i.usd_per_hour == 0.0 and i.status == "running" for i in again.list_instances())
        assert LocalProvider(directory, "other-pool").list_instances() == []

        # a dead one is forgotten
        os.killpg(record["pid"], signal.SIGKILL)
        wait_for(lambda: [i.name for i in again.list_instances()] == ["test-local-bbbb"], 20, 0.2, "forgetting")
        assert not (directory / "test-local-aaaa.json").exists()

        # terminate: a warm shutdown of the whole session
        pid = json.loads((directory / "test-local-bbbb.json").read_text())["pid"]
        again.terminate("test-local-bbbb")
        wait_for(lambda: again.list_instances() == [], 30, 0.2, "the terminated worker to go")
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    finally:
        for path in directory.glob("*.json"):
            try:
                os.killpg(json.loads(path.read_text())["pid"], signal.SIGKILL)
            except (ProcessLookupError, KeyError, ValueError):
                pass


def test_a_recycled_pid_is_not_mistaken_for_a_worker(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, "test-local")
    # our own pid, with a start time that does not match: some other process now holds the pid
    (tmp_path / "test-local-cccc.json").write_text(json.dumps(
        {"name": "test-local-cccc", "pid": os.getpid(), "start_time": "1", "created_at": 0, "marker": "test-local"}))
    (tmp_path / "test-local-dddd.json").write_text("not json")
    assert provider.list_instances() == []
    assert list(tmp_path.glob("*.json")) == []
    provider.terminate("test-local-cccc")  # gone already: nothing to do, no signal sent


def test_a_lookup_of_a_dead_or_unknown_worker_says_gone(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, "test-local", deployment="d1")
    (tmp_path / "test-local-eeee.json").write_text(json.dumps(
        {"name": "test-local-eeee", "pid": os.getpid(), "start_time": "1", "created_at": 0,
         "marker": "test-local/d1"}))
    assert provider.get_instance("test-local-eeee") is None  # the pid belongs to another process now
    assert provider.get_instance("test-local-ffff") is None


def test_workers_carry_the_marker_and_the_lease_key(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path, "test-local", env={"A": "1", LEASE_ENV: "stale"}, deployment="d1",
                             lease_key="scaler:test-local:lease")
    assert provider.env[MARKER_ENV] == "test-local/d1" and provider.env[LEASE_ENV] == "scaler:test-local:lease"
    assert LEASE_ENV not in LocalProvider(tmp_path, "test-local", env={LEASE_ENV: "stale"}).env


@pytest.mark.parametrize(("answers", "lapsed_after"), [
    ([True, True, False, False], 4),  # two reads in a row without the lease
    ([False, True, False, True, False, False], 6),  # a single miss is not a lapse
    ([None, None, False, False], 4),  # a failed read (Redis away) counts as alive
])
def test_the_lease_watch_stops_only_on_a_confirmed_lapse(answers: list[bool | None], lapsed_after: int) -> None:
    calls: list[str] = []
    answers_left = list(answers)

    def lease_alive() -> bool:
        calls.append("read")
        answer = answers_left.pop(0)
        if answer is None:
            raise ConnectionError("redis away")
        return answer

    watch_lease(lease_alive, lambda: calls.append("stop"), poll_s=0.0, sleep=lambda _: None)
    assert calls == ["read"] * lapsed_after + ["stop"]
