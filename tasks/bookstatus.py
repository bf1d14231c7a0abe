"""Where a submitted book stands: its submission record in storage joined with Celery task states."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from synth.storage import Storage


def submission_key(book_id: str) -> str:
    return f"{book_id}/submission.json"


@dataclass
class ChapterStatus:
    chapter_id: str
    title: str | None
    characters: int
    task_id: str
    state: str = "PENDING"
    done: int = 0
    total: int = 0
    worker: str | None = None
    duration_s: float | None = None
    uri: str | None = None
    error: str | None = None

    @property
    def phase(self) -> str:
        """queued | running | done | failed."""
        if self.state == "SUCCESS":
            return "done"
        if self.state in ("FAILURE", "REVOKED"):
            return "failed"
        return "running" if self.state in ("STARTED", "PROGRESS", "RETRY") else "queued"

    @property
    def fraction(self) -> float:
        if self.phase == "done":
            return 1.0
        return self.done / self.total if self.total else 0.0


@dataclass
class BookStatus:
    book_id: str
    title: str | None
    submitted_at: float
    chapters: list[ChapterStatus]
    assembly_task_id: str
    assembly_state: str = "PENDING"
    result: dict[str, Any] | None = None
    error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.assembly_state in ("SUCCESS", "FAILURE", "REVOKED")

    @property
    def fraction(self) -> float:
        """Share of the book's characters synthesized so far."""
        total = sum(c.characters for c in self.chapters) or 1
        return sum(c.fraction * c.characters for c in self.chapters) / total


def task_meta(app: Celery, task_id: str) -> tuple[str, Any]:
    """(state, result or progress meta or exception) of a task, read straight from the result backend.

    AsyncResult would also rebuild the task's parent/children results, which subscribe to Redis pub/sub and
    outlive a status poll.
    """
    meta = app.backend.get_task_meta(task_id)
    return meta["status"], meta.get("result")


def _chapter(app: Celery, entry: dict[str, Any]) -> ChapterStatus:
    status = ChapterStatus(chapter_id=entry["chapter_id"], title=entry.get("title"),
                           characters=int(entry.get("characters", 0)), task_id=entry["task_id"])
    status.state, info = task_meta(app, entry["task_id"])
    if status.state == "PROGRESS" and isinstance(info, dict):
        status.done, status.total = int(info.get("done", 0)), int(info.get("total", 0))
        status.worker = info.get("worker")
    elif status.state == "SUCCESS" and isinstance(info, dict):
        status.duration_s, status.uri = info.get("duration_s"), info.get("uri")
        status.worker = (info.get("usage") or {}).get("worker")
        status.done = status.total = int(info.get("chunks", 0))
    elif status.state == "FAILURE":
        status.error = f"{type(info).__name__}: {info}"
    return status


def book_status(app: Celery, storage: Storage, book_id: str) -> BookStatus | None:
    """The book's status, or None when no book with that id was submitted."""
    record = storage.get_json(submission_key(book_id))
    if record is None:
        return None
    chapters = [_chapter(app, entry) for entry in record["chapters"]]
    status = BookStatus(book_id=book_id, title=record.get("title"), submitted_at=float(record["submitted_at"]),
                        chapters=chapters, assembly_task_id=record["assembly_task_id"])
    status.assembly_state, outcome = task_meta(app, record["assembly_task_id"])
    if status.assembly_state == "SUCCESS":
        status.result = outcome
    elif status.assembly_state == "FAILURE":
        status.error = f"{type(outcome).__name__}: {outcome}"
    phases = ("queued", "running", "done", "failed")
    status.counts = {phase: sum(c.phase == phase for c in chapters) for phase in phases}
    return status
