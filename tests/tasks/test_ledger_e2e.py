"""Storage is the ledger: Redis restarted EMPTY mid-book forgets the queue, the chord and every result, yet
`audiobook status` tells the finished chapters from their final objects in storage, and `audiobook resume`
re-enqueues the rest from the texts kept in storage; the book completes without synthesizing the finished
chapters again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery
from celery.result import AsyncResult

from synth.storage import open_storage
from tasks.bookstatus import book_status
from tests.support.processes import ROOT, RedisServer, result_of, wait_for

pytestmark = pytest.mark.slow

CHAPTERS = [{"chapter_id": f"c{i}", "title": f"Part {i}",
             "text": " ".join(f"Part {i} has sentence {n} in it." for n in range(1, 16))} for i in range(1, 6)]


def audiobook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tasks.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_redis_restarted_empty_then_resume_completes_the_book(volatile_redis_server: RedisServer, start_worker,
                                                               audio_dir: Path) -> None:
    server = volatile_redis_server
    url = server.url
    env = {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url}
    gpu = start_worker("gpu-long", name="gpu", env=env, wait=False)
    control = start_worker("control", name="control", env=env, wait=False)
    client = Celery("client", broker=url, backend=url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    for worker in (gpu, control):
        worker.wait_ready(client)
    started = result_of(client, client.send_task("audiobook.synthesize_book", queue="control", kwargs={
        "book_id": "amnesia", "chapters": CHAPTERS, "output": "flac"}).id, 60)
    chapters = [AsyncResult(task_id, app=client) for task_id in started["chapter_task_ids"]]
    wait_for(lambda: sum(r.state == "SUCCESS" for r in chapters) >= 2, 120, interval=0.05,
             what="two chapters done")
    server.kill()
    server.start()  # no AOF: the queue, the chord, every result: gone

    storage = open_storage(audio_dir.as_uri())
    status = book_status(client, storage, "amnesia")
    done_before = {c.chapter_id for c in status.chapters if c.phase == "done"}
    assert len(done_before) >= 2 and all(c.uri for c in status.chapters if c.phase == "done")
    shown = audiobook(gpu.env, "status", "amnesia")
    assert shown.returncode == 0 and sum(" done " in line for line in shown.stdout.splitlines()) >= 2, shown.stdout
    stamps = {c: (audio_dir / "amnesia" / c).stat().st_mtime_ns for c in done_before}

    # A chapter the worker was running when Redis went finishes by itself; resume waits for it.
    wait_for(lambda: all(c.phase != "running" for c in book_status(client, storage, "amnesia").chapters), 120,
             what="the running chapter to finish")
    done_now = {c.chapter_id for c in book_status(client, storage, "amnesia").chapters if c.phase == "done"}
    resumed = audiobook(gpu.env, "resume", "amnesia", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert set(report["finished"]) == done_now and len(done_now) < len(CHAPTERS)
    assert set(report["requeued"]) == {c["chapter_id"] for c in CHAPTERS} - done_now

    manifest = result_of(client, report["assembly_task_id"], 240)
    assert [c["chapter_id"] for c in manifest["chapters"]] == [c["chapter_id"] for c in CHAPTERS]
    assert Path(manifest["book_uri"].removeprefix("file://")).is_file()
    for chapter_id, stamp in stamps.items():  # finished chapters were not synthesized again
        assert (audio_dir / "amnesia" / chapter_id).stat().st_mtime_ns == stamp
    final = book_status(client, storage, "amnesia")
    assert final.finished and final.counts["done"] == len(CHAPTERS) and final.assembly_state == "SUCCESS"
    client.close()
