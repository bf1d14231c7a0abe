"""Highly available Redis: every Redis user on `sentinel://` URLs (broker, result backend, the scaler's depth
reads, lock and state, the preview limits) against a real master, replica and two sentinels, through a
failover in the middle of a book."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from scaler.redis_client import redis_client
from scaler.state import StateStore
from tests.support.processes import ROOT, wait_for
from tests.support.sentinel import SentinelCluster

pytestmark = pytest.mark.slow
MASTER = "books"


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path / "sentinel", MASTER).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def sentinel_env(sentinels: SentinelCluster, tmp_path: Path) -> dict[str, str]:
    return {"CELERY_BROKER_URL": sentinels.url, "CELERY_RESULT_BACKEND": sentinels.url,
            "AUDIOBOOK_REDIS_MASTER_NAME": MASTER, "SCALER_NAME_PREFIX": f"ha-{uuid.uuid4().hex[:6]}",
            "SCALER_LOCAL_DIR": str(tmp_path / "workers"), "PREVIEW_RATE_PER_MINUTE": "1"}


@pytest.fixture
def sentinel_client(sentinels: SentinelCluster) -> Iterator[Celery]:
    """Another service on the same Sentinel: Celery's own sentinel broker and backend."""
    app = Celery("client", broker=sentinels.url, backend=sentinels.url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                    broker_transport_options={"master_name": MASTER},
                    result_backend_transport_options={"master_name": MASTER},
                    broker_connection_retry_on_startup=True)
    yield app
    app.close()


def scaler_tick(env: dict[str, str]) -> dict:
    run = subprocess.run([sys.executable, "-m", "tasks.cli", "scaler", "tick", "--dry-run", "--json"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return json.loads(run.stdout)


def preview(client: Celery, requester: str) -> dict:
    """One preview; the control worker checks the requester's rate in Redis first."""
    result = client.send_task("audiobook.synthesize_preview", queue="preview",
                              kwargs={"text": "A voice sample.", "requester": requester})
    try:
        return {"ok": result.get(timeout=120)}
    except Exception as exc:  # noqa: BLE001 - the task's own error class travels by name
        return {"error": type(exc).__name__, "message": str(exc)}


def test_a_book_completes_through_a_sentinel_failover(start_worker, worker_env, sentinels, sentinel_env,
                                                      sentinel_client: Celery) -> None:
    gpu = start_worker("gpu-long", env=sentinel_env, wait=False)
    control = start_worker("control,preview", name="control", env=sentinel_env, wait=False)
    gpu.wait_ready(sentinel_client)
    control.wait_ready(sentinel_client)
    cli_env = worker_env | sentinel_env

    before = scaler_tick(cli_env)  # depth read, lock and state through the sentinels
    assert before["outcome"] == "dry_run" and before["observation"]["pending"] == 0
    assert preview(sentinel_client, "warm-up").get("ok")  # the control worker loads its model once

    text = " ".join(f"Sentence {n} of this chapter is here to take a moment." for n in range(1, 5))
    chapters = [{"chapter_id": f"ch-{i}", "title": f"Part {i}", "text": f"Chapter {i}. {text}"} for i in range(1, 7)]
    submitted = sentinel_client.send_task("audiobook.synthesize_book", queue="control", kwargs={
        "book_id": f"ha-{uuid.uuid4().hex[:6]}", "chapters": chapters, "output": "none"}).get(timeout=60)
    first = sentinel_client.AsyncResult(submitted["chapter_task_ids"][0])
    wait_for(lambda: first.state == "SUCCESS", 120, interval=0.2, what="the first chapter")
    assert preview(sentinel_client, "listener-1").get("ok")
    assert preview(sentinel_client, "listener-1").get("error") == "PreviewRefused"  # 1 per minute, in Redis

    states = [sentinel_client.AsyncResult(t).state for t in submitted["chapter_task_ids"]]
    old_master = sentinels.master_port()
    new_master = sentinels.kill_master()
    assert new_master != old_master and states.count("SUCCESS") < len(chapters), states  # mid-book

    assert preview(sentinel_client, "listener-1").get("error") == "PreviewRefused"  # the limit's state came through
    assert preview(sentinel_client, "listener-2").get("ok")
    manifest = sentinel_client.AsyncResult(submitted["assembly_task_id"]).get(timeout=240)
    assert [c["chapter_id"] for c in manifest["chapters"]] == [c["chapter_id"] for c in chapters]
    assert all(c["duration_s"] > 0 for c in manifest["chapters"])

    after = scaler_tick(cli_env)
    assert after["outcome"] == "dry_run" and after["observation"]["failed_sources"] == []
    client = redis_client(sentinels.url, {"master_name": MASTER})
    assert client.connection_pool.get_master_address()[1] == new_master
    store = StateStore(client, sentinel_env["SCALER_NAME_PREFIX"])
    assert [r.ts for r in store.records(2)] == [after["ts"], before["ts"]]  # the state survived the failover
    for worker in (gpu, control):  # their warm shutdown after a failover can outlast the fixture's 30 s grace
        worker.stop(grace=10)
