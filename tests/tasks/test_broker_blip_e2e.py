"""Redis (AOF) stops mid-book and is back 3 s later: running chapters carry on (progress is best effort, result
writes wait for the backend), every chapter runs once, and the manifest and book file appear. Then a finished
chapter whose acknowledgement was lost is back in `unacked`, as a failed ack leaves it: it is not stranded
for the visibility timeout (4 h): the reaper puts it back and its redelivery is settled without work."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from tests.support.processes import FAST_RECOVERY, RedisServer, result_of, wait_for

pytestmark = pytest.mark.slow

CHAPTERS = [{"chapter_id": f"c{i}", "title": f"Part {i}",
             "text": " ".join(f"Part {i} has sentence {n} in it." for n in range(1, 25))} for i in range(1, 7)]
SMALL_BATCHES = {"AUDIOBOOK_MAX_BATCH_CHARS": "80", "AUDIOBOOK_MAX_CHUNK_CHARS": "40"}


def client_for(url: str) -> Celery:
    app = Celery("client", broker=url, backend=url, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    return app


def test_a_redis_restart_mid_book_loses_nothing(redis_server: RedisServer, start_worker, start_beat,
                                                audio_dir: Path) -> None:
    url = redis_server.url
    env = {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url} | FAST_RECOVERY
    workers = [start_worker("gpu-long", name=f"gpu-{x}", env=env | SMALL_BATCHES, wait=False) for x in "ab"]
    workers.append(start_worker("control", name="control", concurrency=2, env=env, wait=False))
    start_beat(env)
    client = client_for(url)
    for worker in workers:
        worker.wait_ready(client)
    started = result_of(client, client.send_task("audiobook.synthesize_book", queue="control", kwargs={
        "book_id": "blip", "title": "Blip", "chapters": CHAPTERS, "output": "flac"}).id, 60)
    chapters = [AsyncResult(task_id, app=client) for task_id in started["chapter_task_ids"]]
    raw = redis.Redis.from_url(url)
    held: dict[bytes, tuple[bytes, float]] = {}  # what `unacked` held while chapters ran, for the lost ack

    def running() -> bool:
        for tag, entry in raw.hgetall("unacked").items():
            held.setdefault(tag, (entry, raw.zscore("unacked_index", tag) or time.time()))
        return sum(r.state == "PROGRESS" for r in chapters) >= 1 and any(r.state == "SUCCESS" for r in chapters)

    wait_for(running, 120, interval=0.05, what="a chapter done and another running")
    redis_server.kill()
    time.sleep(3)
    redis_server.start()  # same port, same AOF

    manifest = result_of(client, started["assembly_task_id"], 240)
    assert [c["chapter_id"] for c in manifest["chapters"]] == [c["chapter_id"] for c in CHAPTERS]
    assert Path(manifest["book_uri"].removeprefix("file://")).is_file()
    results = [result_of(client, r.id, 10) for r in chapters]
    assert [r["attempts"] for r in results] == [1] * len(CHAPTERS)  # every chapter ran once
    for chapter, result in zip(CHAPTERS, results, strict=True):
        finals = sorted(p.name for p in (audio_dir / "blip" / chapter["chapter_id"]).glob("*.flac"))
        assert finals == [result["key"].rsplit("/", 1)[1]]  # one final object each

    # A lost acknowledgement: a finished chapter's entry is back in `unacked` as a failed ack leaves it.
    tag, (entry, delivered_at) = next((t, e) for t, e in held.items() if b"gpu-long" in e[0])
    raw.hset("unacked", tag, entry)
    raw.zadd("unacked_index", {tag: delivered_at})
    wait_for(lambda: raw.hlen("unacked") == 0 and raw.llen("gpu-long") == 0, 60,
             what="the reaper to put the entry back and a worker to settle it")
    logs = "\n".join(w.tail(100_000) for w in workers)
    assert "already succeeded (an acknowledgement was lost): not run again" in logs
    assert [result_of(client, r.id, 10)["attempts"] for r in chapters] == [1] * len(CHAPTERS)
    client.close()
