"""A book's lifecycle on both brokers: submitting it again while in progress queues nothing new; `audiobook
cancel` takes its queued chapters off the queue (the scaler's depth reader sees it shrink at once) and stops
the running one; results keep no chapter text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from scaler.observe import depth_reader
from synth.storage import open_storage
from tasks.bookstatus import book_status
from tests.support.brokers import BOTH_BROKERS
from tests.support.processes import ROOT, wait_for

pytestmark = pytest.mark.slow

SMALL_BATCHES = {"AUDIOBOOK_MAX_BATCH_CHARS": "60", "AUDIOBOOK_MAX_CHUNK_CHARS": "40"}
CHAPTERS = [{"chapter_id": f"c{i}", "text": " ".join(f"Part {i} sentence {n} is here." for n in range(1, 80))}
            for i in range(1, 5)]


def submit(app: Celery, chapters: list[dict]) -> AsyncResult:
    return app.send_task("audiobook.synthesize_book", queue="control",
                         kwargs={"book_id": "saga", "chapters": chapters, "output": "none"})


@BOTH_BROKERS
def test_resubmit_queues_no_duplicates_and_cancel_empties_the_queue(start_worker, client_app: Celery,
                                                                   broker_url: str, redis_url: str,
                                                                   worker_env: dict[str, str],
                                                                   audio_dir: Path) -> None:
    gpu = start_worker("gpu-long", name="gpu", env=SMALL_BATCHES, wait=False)
    control = start_worker("control", name="control", wait=False)
    for worker in (gpu, control):
        worker.wait_ready(client_app)
    first = submit(client_app, CHAPTERS).get(timeout=60)
    running = AsyncResult(first["chapter_task_ids"][0], app=client_app)
    wait_for(lambda: running.state == "PROGRESS", 120, what="the first chapter running")
    depth = depth_reader(broker_url, "gpu-long")
    wait_for(lambda: depth.read().waiting == 3, 10, what="three chapters waiting")  # AMQP counts a moment later

    again = submit(client_app, CHAPTERS).get(timeout=60)
    assert again == first  # the same submission: same task ids, nothing new queued
    assert depth.read().waiting == 3
    changed = [CHAPTERS[0] | {"text": "Another text."}, *CHAPTERS[1:]]
    with pytest.raises(Exception, match="still in progress") as info:  # noqa: B017 - remote type checked by name
        submit(client_app, changed).get(timeout=60)
    assert type(info.value).__name__ == "BookInProgress"

    # Results keep no chapter text (no result_extended): not the book's, not a running chapter's progress.
    backend = redis.Redis.from_url(redis_url)
    stored = b"".join(backend.get(k) or b"" for k in backend.keys("celery-task-meta-*"))
    assert stored and b"sentence 7 is here" not in stored

    run = subprocess.run([sys.executable, "-m", "tasks.cli", "cancel", "saga", "--json"], cwd=ROOT, env=worker_env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["unqueued"] == 3
    assert depth.read().waiting == 0  # at once, with no worker taking anything: the scaler sees it

    storage = open_storage(audio_dir.as_uri())
    wait_for(lambda: running.state == "REVOKED", 60, what="the running chapter to stop")

    def idle() -> bool:
        active = client_app.control.inspect([gpu.hostname], timeout=1).active() or {}
        return active.get(gpu.hostname) == []

    wait_for(idle, 60, what="the GPU worker to be idle")
    status = book_status(client_app, storage, "saga")
    assert status.cancelled and status.finished and status.counts["cancelled"] == len(CHAPTERS)
    assert not (audio_dir / "saga" / "manifest.json").exists()
    assert gpu.proc.poll() is None  # the worker lives on and takes other work
    chapter = {"book_id": "other", "chapter_id": "c1", "text": "Next, please."}
    assert client_app.send_task("audiobook.synthesize_chapter", kwargs=chapter, queue="gpu-long").get(timeout=120)
