"""Soak: a 20-chapter book while, every few seconds, a random GPU worker in the middle of a chapter is SIGKILLed
(process group, as a vanished pod) and replaced, and Redis (AOF) is restarted once: no chapter lost, no duplicate
object, the book file appears. Killed chapters come back through leases and the reaper (every 1.5 s here)."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from celery import Celery

from tests.support.processes import FAST_RECOVERY, RedisServer, result_of

pytestmark = pytest.mark.slow

CHAPTERS = [{"chapter_id": f"c{i:02d}", "title": f"Chapter {i}",
             "text": " ".join(f"Chapter {i} line {n} goes here." for n in range(1, 9))} for i in range(1, 21)]
KILL_EVERY_S = 4.0
MAX_KILLS = 8
GPU_WORKERS = 3


def test_soak_kills_and_a_broker_restart_lose_nothing(redis_server: RedisServer, start_worker, start_beat,
                                                      audio_dir: Path) -> None:
    url = redis_server.url
    env = {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url, "AUDIOBOOK_MAX_ATTEMPTS": "50"} | FAST_RECOVERY
    rng = random.Random(9)
    gpus = [start_worker("gpu-long", name=f"gpu-{n}", env=env, wait=False) for n in range(GPU_WORKERS)]
    control = start_worker("control", name="control", concurrency=2, env=env, wait=False)
    start_beat(env)
    client = Celery("client", broker=url, backend=url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    for worker in (*gpus, control):
        worker.wait_ready(client)
    started = result_of(client, client.send_task("audiobook.synthesize_book", queue="control", kwargs={
        "book_id": "soak", "title": "Soak", "chapters": CHAPTERS, "output": "flac"}).id, 60)

    chapters = started["chapter_task_ids"]

    def busy_worker() -> str | None:
        """The hostname of a worker in the middle of a chapter, if any."""
        running = [meta["result"]["worker"] for meta in map(client.backend.get_task_meta, chapters)
                   if meta["status"] == "PROGRESS" and isinstance(meta.get("result"), dict)]
        return rng.choice(running) if running else None

    kills, restarted, deadline = 0, False, time.monotonic() + 240
    next_kill = time.monotonic() + KILL_EVERY_S
    while client.backend.get_task_meta(started["assembly_task_id"])["status"] not in ("SUCCESS", "FAILURE"):
        assert time.monotonic() < deadline, f"book not done after {kills} kills"
        hostname = busy_worker() if time.monotonic() >= next_kill and kills < MAX_KILLS else None
        victim = next((w for w in gpus if w.hostname == hostname and w.proc.poll() is None), None)
        if victim is not None:
            os.killpg(victim.proc.pid, signal.SIGKILL)  # mid-chapter, main process and pool child at once
            gpus.remove(victim)
            gpus.append(start_worker("gpu-long", name=f"gpu-{GPU_WORKERS + kills}", env=env, wait=False))
            kills += 1
            next_kill = time.monotonic() + KILL_EVERY_S
            if kills == 2:
                redis_server.kill()
                time.sleep(2)
                redis_server.start()  # same port, same AOF
                restarted = True
        time.sleep(0.2)

    manifest = result_of(client, started["assembly_task_id"], 10)
    assert kills >= 3 and restarted
    assert [c["chapter_id"] for c in manifest["chapters"]] == [c["chapter_id"] for c in CHAPTERS]  # 0 lost
    for chapter in CHAPTERS:
        finals = [p for p in (audio_dir / "soak" / chapter["chapter_id"]).iterdir() if p.suffix == ".flac"]
        assert len(finals) == 1, (chapter["chapter_id"], finals)  # 0 duplicate objects
    assert Path(manifest["book_uri"].removeprefix("file://")).is_file()
    print(f"\nsoak: {kills} workers killed, Redis restarted once, 20/20 chapters, book at {manifest['book_uri']}")
    client.close()
