"""`audiobook.synthesize_book`: fan chapters out on `gpu-long`, then assemble the manifest and the book file
(M4B/MP3/FLAC, through `synth.output`) on `control`.

The book's ledger (tasks.ledger) is written before any chapter is queued: the submission record with every
chapter's text, so `audiobook resume` can redo what a broker forgot. Submitting a book that is still in
progress queues nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from celery import Celery, Task, chord, signature, states, uuid

from settings import QUEUE_CONTROL, QUEUE_GPU, get_settings
from synth.errors import StorageError
from synth.output import BookOptions, assemble_book_file
from synth.output.assemble import with_book
from synth.usage import book_usage, now_iso
from tasks import app
from tasks.errors import BookInProgress
from tasks.ledger import BookLedger, ChapterEntry, Submission, text_digest
from tasks.payloads import BookRequest, validate
from tasks.runtime import get_storage


def in_progress(app: Celery, ledger: BookLedger, submission: Submission) -> bool:
    """Neither assembled (per storage or the backend), nor failed, nor cancelled."""
    if ledger.cancelled() or ledger.book_done(submission):
        return False
    return app.backend.get_task_meta(submission.assembly_task_id).get("status") not in states.READY_STATES


def enqueue(submission: Submission, texts: dict[str, str]) -> None:
    """Send the chapters named in `texts` (with their task ids from the submission) and the assembly after them.

    Assembly takes the other chapters' results from the ledger: they finished before.
    """
    shared = {"book_id": submission.book_id, "voice": submission.voice, "format": submission.format,
              "seed": submission.seed, "metadata": submission.metadata}
    shared = {k: v for k, v in shared.items() if v is not None}
    header = [signature("audiobook.synthesize_chapter", queue=QUEUE_GPU, task_id=entry.task_id,
                        kwargs=shared | {"chapter_id": entry.chapter_id, "title": entry.title,
                                         "text": texts[entry.chapter_id]})
              for entry in submission.chapters if entry.chapter_id in texts]
    body = signature("audiobook.assemble_book", queue=QUEUE_CONTROL, task_id=submission.assembly_task_id,
                     kwargs={"book_id": submission.book_id, "title": submission.title, "author": submission.author,
                             "output": submission.output, "metadata": submission.metadata, "cover": submission.cover,
                             "chapter_ids": submission.chapter_ids})
    if header:
        chord(header)(body)
    else:
        body.apply_async(args=([],))


@app.task(name="audiobook.synthesize_book", bind=True)
def synthesize_book_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    request = validate(BookRequest, self.name, args, kwargs, max_chars=get_settings().max_chapter_chars)
    ledger = BookLedger(get_storage(), request.book_id)
    # Task ids are fixed up front so the submission record exists before any chapter can run.
    submission = Submission(
        book_id=request.book_id, title=request.title, author=request.author, output=request.output,
        voice=request.voice, format=request.chapter_format, seed=request.seed, metadata=dict(request.metadata),
        cover=request.cover, submitted_at=time.time(), task_id=self.request.id, assembly_task_id=uuid(),
        chapters=tuple(ChapterEntry(chapter_id=ch.chapter_id, title=ch.title, characters=len(ch.text),
                                    task_id=uuid(), text_sha256=text_digest(ch.text)) for ch in request.chapters))
    current = ledger.submission()
    if current is not None and in_progress(self.app, ledger, current):
        if current.identity() == submission.identity():
            return current.receipt()  # the same book again: nothing new is queued
        raise BookInProgress(f"{self.name}: book {request.book_id!r} is still in progress with other chapters or "
                             "options; cancel it (`audiobook cancel`) or wait until it is done")
    for chapter in request.chapters:
        ledger.put_text(chapter.chapter_id, chapter.text)
    ledger.uncancel()
    ledger.save(submission)
    enqueue(submission, {ch.chapter_id: ch.text for ch in request.chapters})
    return submission.receipt()


def book_options() -> BookOptions:
    s = get_settings()
    return BookOptions(target_lufs=s.book_lufs, peak_db=s.peak_db, mp3_bitrate_kbps=s.mp3_bitrate_kbps,
                       aac_bitrate_kbps=s.m4b_bitrate_kbps, lossy_sample_rate=s.book_sample_rate)


def in_book_order(ledger: BookLedger, chapter_results: Iterable[dict[str, Any]],
                  chapter_ids: list[str] | None) -> list[dict[str, Any]]:
    """The chord's results in the submitted order, with chapters that finished earlier read from the ledger."""
    results = list(chapter_results)
    if chapter_ids is None:
        return results
    by_id = {r["chapter_id"]: r for r in results}
    missing = []
    for chapter_id in chapter_ids:
        if chapter_id not in by_id:
            done = ledger.done(chapter_id)
            if done is None:
                missing.append(chapter_id)
            else:
                by_id[chapter_id] = done["result"]
    if missing:
        raise StorageError(f"book {ledger.book_id}: no finished result for chapters {', '.join(missing)}")
    return [by_id[chapter_id] for chapter_id in chapter_ids]


@app.task(name="audiobook.assemble_book", bind=True, autoretry_for=(StorageError,), max_retries=5,
          retry_backoff=True, retry_backoff_max=300)
def assemble_book_task(self: Task, chapter_results: list[dict[str, Any]], *, book_id: str,
                       title: str | None = None, author: str | None = None, output: str = "none",
                       metadata: dict[str, str] | None = None, cover: str | None = None,
                       chapter_ids: list[str] | None = None) -> dict[str, Any]:
    """Write the book manifest (chapter URIs, durations and start offsets, in the submitted order), then the
    book file at `book_id/book.<output>` unless `output` is `none`, and the manifest again with it."""
    storage = get_storage()
    ledger = BookLedger(storage, book_id)
    chapter_results = in_book_order(ledger, chapter_results, chapter_ids)
    offset = 0.0
    chapters = []
    for result in chapter_results:
        chapters.append({"chapter_id": result["chapter_id"], "title": result.get("title"), "uri": result["uri"],
                         "duration_s": result["duration_s"], "start_s": round(offset, 3),
                         "sample_rate": result["sample_rate"], "format": result["format"]})
        offset += result["duration_s"]
    manifest = {"book_id": book_id, "title": title, "author": author, "duration_s": round(offset, 3),
                "chapters": chapters, "metadata": metadata or {}, "finished_at": now_iso(),
                "usage": book_usage([r["usage"] for r in chapter_results])}
    uri = storage.put_json(f"{book_id}/manifest.json", manifest)
    if output != "none":
        book = assemble_book_file(storage, book_id, chapter_results, output, title=title, author=author,
                                  cover_key=cover, options=book_options())
        manifest = with_book(manifest, book)
        uri = storage.put_json(f"{book_id}/manifest.json", manifest)
    ledger.mark_book_done(self.request.id, uri)
    return manifest | {"manifest_uri": uri}
