"""`audiobook.synthesize_chapter`: validate, synthesize through `synth`, report usage."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from celery import Task
from celery.exceptions import Reject

from settings import QUEUE_GPU, get_settings
from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.errors import ModelLoadError, StorageError
from synth.usage import ChapterUsage, now_iso, record_usage
from tasks import app
from tasks.payloads import ChapterRequest, validate
from tasks.runtime import get_engine, get_storage, report_model

log = logging.getLogger(__name__)


def engine_or_step_aside(task: Task):  # noqa: ANN201 - an Engine
    """The worker's engine; if it cannot load, the chapter goes back to the queue and this worker stops
    taking chapters, so a misconfigured worker never fails (and so loses) work a healthy one could do."""
    try:
        return get_engine()
    except ModelLoadError as exc:
        if task.request.called_directly or not task.request.hostname:
            raise
        log.error("model cannot be loaded, no longer consuming %s: %s", QUEUE_GPU, exc)
        report_model(exc, task.request.hostname)  # the scaler reads it: this worker is replaced, not retried
        task.app.control.cancel_consumer(QUEUE_GPU, destination=[task.request.hostname])
        raise Reject(f"model cannot be loaded on {task.request.hostname}: {exc}", requeue=True) from None


@app.task(name="audiobook.synthesize_chapter", bind=True, autoretry_for=(StorageError,), max_retries=5,
          retry_backoff=True, retry_backoff_max=300)
def synthesize_chapter_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    request = validate(ChapterRequest, self.name, args, kwargs, max_chars=get_settings().max_chapter_chars)
    job = ChapterJob(book_id=request.book_id, chapter_id=request.chapter_id, text=request.text,
                     voice=request.voice, format=request.format, title=request.title, seed=request.seed)

    def progress(done: int, total: int, resumed_from: int) -> None:
        if self.request.id and not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={
                "book_id": job.book_id, "chapter_id": job.chapter_id, "done": done, "total": total,
                "resumed_from": resumed_from, "pid": os.getpid(), "worker": self.request.hostname})

    engine = engine_or_step_aside(self)
    settings, storage = get_settings(), get_storage()
    options = SynthOptions.from_settings(settings, engine)
    result = synthesize_chapter(job, engine, storage, options, progress)
    usage = ChapterUsage(
        book_id=job.book_id, chapter_id=job.chapter_id, characters=result["characters"],
        audio_seconds=result["duration_s"], compute_seconds=result["synth_seconds"],
        usd_per_hour=settings.worker_usd_per_hour, worker=self.request.hostname, task_id=self.request.id,
        model=result["model"], metadata=request.metadata, finished_at=now_iso())
    billed = record_usage(storage, result["key"], usage, cached=result["cached"])
    result = result | {
        "book_id": job.book_id, "chapter_id": job.chapter_id, "title": job.title, "metadata": request.metadata,
        "usage": {"characters": billed.characters, "audio_seconds": billed.audio_seconds,
                  "compute_seconds": billed.compute_seconds, "worker": billed.worker,
                  "usd_per_hour": billed.usd_per_hour, "usd": billed.usd},
    }
    log.info("usage %s", json.dumps({"task_id": self.request.id, **result["usage"],
                                     "book_id": job.book_id, "chapter_id": job.chapter_id}))
    return result
