"""`audiobook.synthesize_book`: fan chapters out on `gpu-long`, then assemble the manifest and the book file
(M4B/MP3/FLAC, through `synth.output`) on `control`."""

from __future__ import annotations

import time
from typing import Any

from celery import Task, chord, signature, uuid

from settings import QUEUE_CONTROL, QUEUE_GPU, get_settings
from synth.errors import StorageError
from synth.output import BookOptions, assemble_book_file
from synth.output.assemble import with_book
from synth.usage import book_usage, now_iso
from tasks import app
from tasks.bookstatus import submission_key
from tasks.payloads import BookRequest, validate
from tasks.runtime import get_storage


@app.task(name="audiobook.synthesize_book", bind=True)
def synthesize_book_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    request = validate(BookRequest, self.name, args, kwargs, max_chars=get_settings().max_chapter_chars)
    shared = {"book_id": request.book_id, "voice": request.voice, "format": request.chapter_format,
              "seed": request.seed, "metadata": request.metadata}
    # Task ids are fixed up front so the submission record exists before any chapter can run.
    header = [
        signature("audiobook.synthesize_chapter", queue=QUEUE_GPU, task_id=uuid(),
                  kwargs=shared | {"chapter_id": ch.chapter_id, "title": ch.title, "text": ch.text})
        for ch in request.chapters
    ]
    body = signature("audiobook.assemble_book", queue=QUEUE_CONTROL, task_id=uuid(),
                     kwargs={"book_id": request.book_id, "title": request.title, "author": request.author,
                             "output": request.output, "metadata": request.metadata, "cover": request.cover})
    chapter_task_ids = [sig.id for sig in header]
    get_storage().put_json(submission_key(request.book_id), {
        "book_id": request.book_id, "title": request.title, "author": request.author, "output": request.output,
        "metadata": request.metadata, "submitted_at": time.time(), "task_id": self.request.id,
        "assembly_task_id": body.id,
        "chapters": [{"chapter_id": ch.chapter_id, "title": ch.title, "characters": len(ch.text), "task_id": tid}
                     for ch, tid in zip(request.chapters, chapter_task_ids, strict=True)]})
    chord(header)(body)
    return {"book_id": request.book_id, "chapters": len(header), "assembly_task_id": body.id,
            "chapter_task_ids": chapter_task_ids}


def book_options() -> BookOptions:
    s = get_settings()
    return BookOptions(target_lufs=s.book_lufs, peak_db=s.peak_db, mp3_bitrate_kbps=s.mp3_bitrate_kbps,
                       aac_bitrate_kbps=s.m4b_bitrate_kbps, lossy_sample_rate=s.book_sample_rate)


@app.task(name="audiobook.assemble_book", bind=True, autoretry_for=(StorageError,), max_retries=5,
          retry_backoff=True, retry_backoff_max=300)
def assemble_book_task(self: Task, chapter_results: list[dict[str, Any]], *, book_id: str,
                       title: str | None = None, author: str | None = None, output: str = "none",
                       metadata: dict[str, str] | None = None, cover: str | None = None) -> dict[str, Any]:
    """Write the book manifest (chapter URIs, durations and start offsets, in the submitted order), then the
    book file at `book_id/book.<output>` unless `output` is `none`, and the manifest again with it."""
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
    storage = get_storage()
    uri = storage.put_json(f"{book_id}/manifest.json", manifest)
    if output != "none":
        book = assemble_book_file(storage, book_id, chapter_results, output, title=title, author=author,
                                  cover_key=cover, options=book_options())
        manifest = with_book(manifest, book)
        uri = storage.put_json(f"{book_id}/manifest.json", manifest)
    return manifest | {"manifest_uri": uri}
