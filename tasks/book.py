"""`audiobook.synthesize_book`: fan chapters out on `gpu-long`, then assemble the manifest on `control`."""

from __future__ import annotations

from typing import Any

from celery import Task, chord, signature

from settings import QUEUE_CONTROL, QUEUE_GPU, get_settings
from tasks import app
from tasks.payloads import BookRequest, validate
from tasks.runtime import get_storage


@app.task(name="audiobook.synthesize_book", bind=True)
def synthesize_book_task(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    request = validate(BookRequest, self.name, args, kwargs, max_chars=get_settings().max_chapter_chars)
    shared = {"book_id": request.book_id, "voice": request.voice, "format": request.format, "seed": request.seed}
    header = [
        signature("audiobook.synthesize_chapter", queue=QUEUE_GPU,
                  kwargs=shared | {"chapter_id": ch.chapter_id, "title": ch.title, "text": ch.text})
        for ch in request.chapters
    ]
    body = signature("audiobook.assemble_book", queue=QUEUE_CONTROL,
                     kwargs={"book_id": request.book_id, "title": request.title, "author": request.author})
    result = chord(header)(body)
    return {"book_id": request.book_id, "chapters": len(header), "assembly_task_id": result.id,
            "chapter_task_ids": [child.id for child in result.parent.results]}


@app.task(name="audiobook.assemble_book", bind=True)
def assemble_book_task(self: Task, chapter_results: list[dict[str, Any]], *, book_id: str,
                       title: str | None = None, author: str | None = None) -> dict[str, Any]:
    """Write the book manifest: chapter URIs, durations and start offsets, in the submitted order."""
    offset = 0.0
    chapters = []
    for result in chapter_results:
        chapters.append({"chapter_id": result["chapter_id"], "title": result.get("title"), "uri": result["uri"],
                         "duration_s": result["duration_s"], "start_s": round(offset, 3),
                         "sample_rate": result["sample_rate"], "format": result["format"]})
        offset += result["duration_s"]
    manifest = {"book_id": book_id, "title": title, "author": author, "duration_s": round(offset, 3),
                "chapters": chapters,
                "usage": {"characters": sum(r["usage"]["characters"] for r in chapter_results),
                          "audio_seconds": round(offset, 3),
                          "compute_seconds": round(sum(r["usage"]["compute_seconds"] for r in chapter_results), 3)}}
    uri = get_storage().put_json(f"{book_id}/manifest.json", manifest)
    return manifest | {"manifest_uri": uri}
