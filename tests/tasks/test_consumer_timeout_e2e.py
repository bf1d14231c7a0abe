"""A chapter that runs longer than RabbitMQ's consumer_timeout (5 s on a private node here; 30 min by default)
completes, once: each delivery pauses at a checkpoint before the timeout (AUDIOBOOK_MAX_HOLD_S) and continues
as a new message with the same task id, so the broker never closes the channel and never redelivers a chapter
that is still running, and no delivery is counted as a failed attempt."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery

from tasks.processes import RabbitServer
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

SMALL_BATCHES = {"AUDIOBOOK_MAX_BATCH_CHARS": "60", "AUDIOBOOK_MAX_CHUNK_CHARS": "40"}
TEXT = " ".join(f"Sentence number {n} is here." for n in range(1, 121))


def test_a_chapter_longer_than_consumer_timeout_runs_once_and_completes(
        short_timeout_rabbit: RabbitServer, start_worker, redis_url: str, audio_dir: Path) -> None:
    # (the node is requested first, so it is stopped after the workers)
    env = {"CELERY_BROKER_URL": short_timeout_rabbit.url, "AUDIOBOOK_MAX_HOLD_S": "1.5"} | SMALL_BATCHES
    workers = [start_worker("gpu-long", name=f"gpu-{x}", env=env, wait=False) for x in "ab"]
    client = Celery("client", broker=short_timeout_rabbit.url, backend=redis_url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    short_timeout_rabbit.wait_ready()
    for worker in workers:
        worker.wait_ready(client)
        # Held time counts from delivery: a model still loading would eat the 5 s on a busy machine.
        wait_for(lambda w=worker: "loaded model" in w.tail(400), 120, what=f"{worker.hostname}'s model")

    result = client.send_task("audiobook.synthesize_chapter", queue="gpu-long",
                              kwargs={"book_id": "long", "chapter_id": "c1", "text": TEXT, "seed": 5})
    final = result.get(timeout=240)

    logs = "\n".join(w.tail(100_000) for w in workers)
    assert "PRECONDITION_FAILED" not in logs and "Couldn't ack" not in logs  # the broker never took it back
    assert logs.count("paused: held") >= 2  # it did outlast the timeout: several deliveries, one chapter
    assert final["attempts"] == 1 and final["resumed_from_chunk"] > 0  # no delivery counted as a failure
    chapter_dir = audio_dir / "long" / "c1"
    assert [p.name for p in chapter_dir.glob("*.wav")] == [final["key"].rsplit("/", 1)[1]]
    client.close()
