"""`audiobook.synthesize_chapter`: validate, synthesize through `synth`, report usage."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from celery import Task

from settings import get_settings
from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.errors import StorageError
from tasks import app
from tasks.payloads import ChapterRequest, validate
from tasks.runtime import get_engine, get_storage

log = logging.getLogger(__name__)


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

    engine = get_engine()
    options = SynthOptions.from_settings(get_settings(), engine)
    result = synthesize_chapter(job, engine, get_storage(), options, progress)
    compute = 0.0 if result["cached"] else result["synth_seconds"]
    result = result | {
        "book_id": job.book_id, "chapter_id": job.chapter_id, "title": job.title, "metadata": request.metadata,
        "usage": {"characters": result["characters"], "audio_seconds": result["duration_s"],
                  "compute_seconds": compute, "worker": self.request.hostname},
    }
    log.info("usage %s", json.dumps({"task_id": self.request.id, **result["usage"],
                                     "book_id": job.book_id, "chapter_id": job.chapter_id}))
    return result
