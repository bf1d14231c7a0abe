"""End to end through real Redis and real `celery -A tasks worker` subprocesses, as another service sees it."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from celery import Celery
from celery.result import AsyncResult

from synth.storage import open_storage
from tasks.bookstatus import book_status
from tests.support.brokers import BOTH_BROKERS
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

CHAPTER = {"book_id": "moby", "chapter_id": "ch-01", "title": "Loomings",
           "text": "Call me Ishmael. Some years ago, never mind how long precisely, I had little money.\n\n"
                   "It is a way I have of driving off the spleen. In 1851 it cost $3!"}


def send_chapter(app: Celery, **kwargs: object) -> AsyncResult:
    return app.send_task("audiobook.synthesize_chapter", kwargs=kwargs, queue="gpu-long")


def audio_at(uri: str) -> tuple[np.ndarray, int]:
    assert uri.startswith("file://"), uri
    return sf.read(uri.removeprefix("file://"), dtype="float32")


@BOTH_BROKERS
def test_chapter_through_a_real_worker(start_worker, client_app: Celery, audio_dir: Path) -> None:
    start_worker("gpu-long")
    result = send_chapter(client_app, **CHAPTER, format="flac", metadata={"order": "A-17"}).get(timeout=120)

    audio, rate = audio_at(result["uri"])
    assert Path(result["uri"].removeprefix("file://")).is_relative_to(audio_dir)
    assert rate == result["sample_rate"] == 16000 and len(audio) > 0
    assert result["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3)
    assert np.isfinite(audio).all() and 20 * math.log10(np.max(np.abs(audio))) <= -3.0
    assert result["characters"] == len(CHAPTER["text"]) and result["sentences"] >= 4
    assert result["format"] == "flac" and result["metadata"] == {"order": "A-17"}
    usage = result["usage"]
    assert usage["characters"] == len(CHAPTER["text"]) and usage["audio_seconds"] == result["duration_s"]
    assert 0 < usage["compute_seconds"] == result["synth_seconds"] and usage["worker"].startswith("gpu0@")


def test_bad_payloads_fail_at_once_and_the_worker_survives(start_worker, client_app: Celery) -> None:
    start_worker("gpu-long")
    bad = [
        ({**CHAPTER, "text": "   "}, "text: must not be empty"),
        ({**CHAPTER, "format": "ogg"}, "format: Input should be 'wav' or 'flac'"),
        ({**CHAPTER, "book_id": "../../etc"}, "book_id: must not contain path separators"),
        ({**CHAPTER, "chapter_id": "a\x01"}, "chapter_id: must not contain control characters"),
        ({**CHAPTER, "unknown": 1}, "unknown: unknown field"),
        ({**CHAPTER, "text": "x" * 200_001}, "text: has 200001 characters"),
    ]
    results = [(send_chapter(client_app, **kwargs), message) for kwargs, message in bad]
    for result, message in results:
        with pytest.raises(Exception, match="audiobook.synthesize_chapter: ") as info:
            result.get(timeout=60)
        assert type(info.value).__name__ == "InvalidPayload" and message in str(info.value)
        assert result.state == "FAILURE" and (result.retries or 0) == 0
    positional = client_app.send_task("audiobook.synthesize_chapter", args=["text"], queue="gpu-long")
    with pytest.raises(Exception, match="keyword arguments only"):
        positional.get(timeout=60)
    # The same worker still takes and finishes real work.
    assert send_chapter(client_app, **CHAPTER).get(timeout=120)["duration_s"] > 0


@BOTH_BROKERS
def test_book_fans_out_to_two_workers_and_writes_a_manifest(start_worker, client_app: Celery,
                                                            audio_dir: Path) -> None:
    start_worker("gpu-long", name="gpu-a")
    start_worker("gpu-long", name="gpu-b")
    start_worker("control", name="control")
    chapters = [{"chapter_id": f"c{i}", "title": f"Part {i}", "text": f"This is part {i}. " * (3 + 2 * i)}
                for i in range(1, 4)]
    started = client_app.send_task("audiobook.synthesize_book", queue="control",
                                   kwargs={"book_id": "tome", "title": "Tome", "chapters": chapters})
    submitted = started.get(timeout=60)
    assert submitted["chapters"] == 3 and len(submitted["chapter_task_ids"]) == 3
    manifest = AsyncResult(submitted["assembly_task_id"], app=client_app).get(timeout=180)

    assert [c["chapter_id"] for c in manifest["chapters"]] == ["c1", "c2", "c3"]
    assert [c["title"] for c in manifest["chapters"]] == ["Part 1", "Part 2", "Part 3"]
    offset = 0.0
    for chapter in manifest["chapters"]:
        assert chapter["start_s"] == pytest.approx(offset, abs=1e-3)
        audio, rate = audio_at(chapter["uri"])
        assert chapter["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3)
        offset += chapter["duration_s"]
    assert manifest["duration_s"] == pytest.approx(offset, abs=1e-3)
    on_disk = Path(manifest["manifest_uri"].removeprefix("file://"))
    assert on_disk.name == "manifest.json" and '"c3"' in on_disk.read_text()
    workers = {AsyncResult(i, app=client_app).get(timeout=10)["usage"]["worker"].split("@")[0]
               for i in submitted["chapter_task_ids"]}
    assert workers == {"gpu-a", "gpu-b"}

    status = book_status(client_app, open_storage(audio_dir.as_uri()), "tome")
    assert status is not None and status.finished and status.assembly_state == "SUCCESS"
    assert status.counts == {"queued": 0, "running": 0, "done": 3, "failed": 0, "cancelled": 0}
    assert status.fraction == 1.0
    assert [c.task_id for c in status.chapters] == submitted["chapter_task_ids"]
    assert book_status(client_app, open_storage(audio_dir.as_uri()), "no-such-book") is None


def test_killed_pool_child_resumes_from_its_checkpoint(start_worker, client_app: Celery, audio_dir: Path) -> None:
    # Small batches make a chapter of many forward passes; a checkpoint after every window.
    start_worker("gpu-long", env={"AUDIOBOOK_MAX_BATCH_CHARS": "60", "AUDIOBOOK_MAX_CHUNK_CHARS": "40",
                                  "AUDIOBOOK_CHECKPOINT_SECONDS": "0"})
    text = " ".join(f"Sentence number {n} is here." for n in range(1, 121))
    result = send_chapter(client_app, book_id="kill", chapter_id="c1", text=text, seed=1)
    chapter_dir = audio_dir / "kill" / "c1"

    def checkpointed() -> tuple[dict, dict] | None:
        meta = result.info if result.state == "PROGRESS" else None
        saved = [json.loads(p.read_text()) for p in chapter_dir.glob(".checkpoint/*/state.json")]
        return (meta, saved[0]) if meta and saved and saved[0]["next_chunk"] >= 8 else None

    meta, state = wait_for(checkpointed, 120, what="a chapter checkpoint")
    assert state["next_chunk"] < meta["total"]
    os.kill(meta["pid"], signal.SIGKILL)  # the pool child dies mid-chapter; the message is requeued

    final = result.get(timeout=240)
    assert final["attempts"] == 2
    assert state["next_chunk"] <= final["resumed_from_chunk"] < meta["total"]  # continued, did not start over
    audio_files = sorted(p.name for p in chapter_dir.glob("*.wav"))
    assert audio_files == [final["key"].rsplit("/", 1)[1]]
    assert not (chapter_dir / ".checkpoint").exists()


def test_pickled_messages_are_refused(start_worker, client_app: Celery, redis_url: str, audio_dir: Path) -> None:
    start_worker("gpu-long")
    evil = Celery("evil", broker=redis_url, backend=redis_url, set_as_current=False)
    evil.conf.update(task_serializer="pickle", accept_content=["pickle", "json"])
    evil.send_task("audiobook.synthesize_chapter", queue="gpu-long",
                   kwargs={**CHAPTER, "chapter_id": "pickled"})
    # The worker takes messages in order: once the JSON chapter sent after it is done, the pickle was seen.
    assert send_chapter(client_app, **CHAPTER).get(timeout=120)["duration_s"] > 0
    assert not (audio_dir / "moby" / "pickled").exists()
    evil.close()


def test_chapter_to_s3_through_a_real_worker(start_worker, client_app: Celery, s3_endpoint: str,
                                             tmp_path: Path) -> None:
    import io

    import boto3

    aws = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="books")
    start_worker("gpu-long", env=aws | {"AUDIOBOOK_STORAGE_URL": "s3://books/audio"})
    result = send_chapter(client_app, **CHAPTER, format="flac").get(timeout=120)

    assert result["uri"] == f"s3://books/audio/{result['key']}"
    body = s3.get_object(Bucket="books", Key=f"audio/{result['key']}")["Body"].read()
    audio, rate = sf.read(io.BytesIO(body), dtype="float32")
    assert rate == result["sample_rate"] and len(audio) == result["samples"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="books")["Contents"]]
    assert not any(".checkpoint" in k for k in keys)  # the checkpoint went with the finished chapter


def test_a_worker_that_cannot_load_the_model_hands_the_chapter_back(start_worker, client_app: Celery,
                                                                      tmp_path: Path) -> None:
    broken = start_worker("gpu-long", name="broken", env={"AUDIOBOOK_MODEL": str(tmp_path / "no-model-here")})
    result = send_chapter(client_app, **CHAPTER)

    def stopped_consuming() -> bool:
        queues = client_app.control.inspect([broken.hostname], timeout=1).active_queues() or {}
        return broken.hostname in queues and queues[broken.hostname] == []

    wait_for(stopped_consuming, 60, what="the broken worker to stop consuming gpu-long")
    assert result.state in ("PENDING", "STARTED")  # handed back to the queue, not failed
    start_worker("gpu-long", name="healthy")
    assert result.get(timeout=120)["usage"]["worker"].startswith("healthy@")
    assert broken.proc is not None and broken.proc.poll() is None
