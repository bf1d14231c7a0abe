"""`audiobook.synthesize_chapter`: validate, synthesize through `synth`, report usage.

Around the synthesis, what keeps a chapter from running twice or being lost: a delivery of a chapter that
already succeeded (its ack was lost) or whose book was cancelled is settled without work; progress is
reported best effort; a delivery held longer than AUDIOBOOK_MAX_HOLD_S pauses at a checkpoint and continues
as a new message with the same task id (RabbitMQ's consumer_timeout would otherwise redeliver it while it
runs); the finished chapter is written to its book's ledger in storage.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from celery import Task, states
from celery.exceptions import Ignore, Reject

from scaler.redis_client import is_redis_url
from settings import AMQP_DEFAULT_HOLD_S, QUEUE_GPU, Settings, get_settings
from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.errors import ChapterPaused, ModelLoadError, StorageError
from synth.usage import ChapterUsage, now_iso, record_usage
from tasks import app
from tasks.ledger import BookLedger
from tasks.payloads import ChapterRequest, validate
from tasks.runtime import get_engine, get_storage, report_model

log = logging.getLogger(__name__)

#: How often a running chapter looks for its book's cancellation mark in storage.
CANCEL_CHECK_S = 10.0


class ChapterCancelled(Exception):
    """The chapter's book was cancelled while it ran."""


def hold_limit_s(s: Settings) -> float | None:
    """AUDIOBOOK_MAX_HOLD_S resolved: unset means a limit on RabbitMQ only; 0 means none."""
    if s.max_hold_s is None:
        return None if is_redis_url(s.broker_url.get_secret_value()) else AMQP_DEFAULT_HOLD_S
    return s.max_hold_s or None


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


def settle_if_done_or_cancelled(task: Task, ledger: BookLedger) -> None:
    """Raise Ignore (ack, no work, no second chord part) when this delivery has nothing left to do."""
    if task.request.called_directly or not task.request.id:
        return
    if task.backend.get_task_meta(task.request.id).get("status") == states.SUCCESS:
        log.warning("chapter task %s already succeeded (an acknowledgement was lost): not run again",
                    task.request.id)
        raise Ignore()
    if ledger.cancelled():
        cancel(task)


def cancel(task: Task) -> None:
    task.backend.mark_as_revoked(task.request.id, "book cancelled", request=task.request)
    raise Ignore()


def progress_hook(task: Task, job: ChapterJob, ledger: BookLedger, hold_s: float | None):  # noqa: ANN201
    """on_progress for synth: best-effort PROGRESS state, then pause or stop when the delivery must end."""
    started = last_cancel_check = time.monotonic()

    def progress(done: int, total: int, resumed_from: int) -> None:
        nonlocal last_cancel_check
        if task.request.id and not task.request.called_directly:
            try:  # best effort: a broker blip must not fail the chapter it reports on
                task.update_state(state="PROGRESS", meta={
                    "book_id": job.book_id, "chapter_id": job.chapter_id, "done": done, "total": total,
                    "resumed_from": resumed_from, "pid": os.getpid(), "worker": task.request.hostname})
            except Exception as exc:  # noqa: BLE001
                log.warning("progress of %s not reported: %s", task.request.id, exc)
        now = time.monotonic()
        if now - last_cancel_check >= CANCEL_CHECK_S:
            last_cancel_check = now
            if ledger.cancelled():
                raise ChapterCancelled(job.book_id)
        if hold_s is not None and now - started >= hold_s and resumed_from < done < total:
            raise ChapterPaused(f"held {now - started:.0f} s (AUDIOBOOK_MAX_HOLD_S={hold_s:g}) at chunk {done}/{total}")

    return progress


@app.task(name="audiobook.synthesize_chapter", bind=True, autoretry_for=(StorageError,), max_retries=5,
          retry_backoff=True, retry_backoff_max=300)
def synthesize_chapter_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    s = get_settings()
    request = validate(ChapterRequest, self.name, args, kwargs, max_chars=s.max_chapter_chars)
    job = ChapterJob(book_id=request.book_id, chapter_id=request.chapter_id, text=request.text,
                     voice=request.voice, format=request.format, title=request.title, seed=request.seed)
    storage = get_storage()
    ledger = BookLedger(storage, job.book_id)
    settle_if_done_or_cancelled(self, ledger)

    engine = engine_or_step_aside(self)
    options = SynthOptions.from_settings(s, engine)
    try:
        result = synthesize_chapter(job, engine, storage, options, progress_hook(self, job, ledger, hold_limit_s(s)))
    except ChapterPaused as paused:
        log.info("chapter %s/%s paused: %s; continuing as a new delivery of task %s", job.book_id, job.chapter_id,
                 paused, self.request.id)
        raise self.replace(self.signature(kwargs=kwargs, queue=QUEUE_GPU)) from None
    except ChapterCancelled:
        cancel(self)
    usage = ChapterUsage(
        book_id=job.book_id, chapter_id=job.chapter_id, characters=result["characters"],
        audio_seconds=result["duration_s"], compute_seconds=result["synth_seconds"],
        usd_per_hour=s.worker_usd_per_hour, worker=self.request.hostname, task_id=self.request.id,
        model=result["model"], metadata=request.metadata, finished_at=now_iso())
    billed = record_usage(storage, result["key"], usage, cached=result["cached"])
    result = result | {
        "book_id": job.book_id, "chapter_id": job.chapter_id, "title": job.title, "metadata": request.metadata,
        "usage": {"characters": billed.characters, "audio_seconds": billed.audio_seconds,
                  "compute_seconds": billed.compute_seconds, "worker": billed.worker,
                  "usd_per_hour": billed.usd_per_hour, "usd": billed.usd},
    }
    ledger.mark_done(job.chapter_id, self.request.id, result)
    log.info("usage %s", json.dumps({"task_id": self.request.id, **result["usage"],
                                     "book_id": job.book_id, "chapter_id": job.chapter_id}))
    return result
