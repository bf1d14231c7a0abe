"""Where a submitted book stands: its ledger in storage joined with Celery task states.

Storage first: a chapter whose run finished is done from its ledger entry (written after its final object)
even when the broker and the result backend forgot it; the backend supplies what is still moving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from synth.storage import Storage
from tasks.ledger import BookLedger, ChapterEntry

PHASES = ("queued", "running", "done", "failed", "cancelled")


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
    cancelled: bool = False

    @property
    def phase(self) -> str:
        """queued | running | done | failed | cancelled."""
        if self.state == "SUCCESS":
            return "done"
        if self.cancelled or self.state == "REVOKED":
            return "cancelled"
        if self.state == "FAILURE":
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
    cancelled: bool = False

    @property
    def finished(self) -> bool:
        return self.cancelled or self.assembly_state in ("SUCCESS", "FAILURE", "REVOKED")

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


def _finished(status: ChapterStatus, result: dict[str, Any]) -> None:
    status.state = "SUCCESS"
    status.duration_s, status.uri = result.get("duration_s"), result.get("uri")
    status.worker = (result.get("usage") or {}).get("worker")
    status.done = status.total = int(result.get("chunks", 0))


def _chapter(app: Celery, ledger: BookLedger, entry: ChapterEntry, cancelled: bool) -> ChapterStatus:
    status = ChapterStatus(chapter_id=entry.chapter_id, title=entry.title, characters=entry.characters,
                           task_id=entry.task_id, cancelled=cancelled)
    state, info = task_meta(app, entry.task_id)
    if state == "SUCCESS" and isinstance(info, dict):
        _finished(status, info)
        return status
    stored = ledger.finished_result(entry)
    if stored is not None:  # the backend forgot it (or never heard): storage has the final object
        _finished(status, stored)
        return status
    status.state = state
    if state == "PROGRESS" and isinstance(info, dict):
        status.done, status.total = int(info.get("done", 0)), int(info.get("total", 0))
        status.worker = info.get("worker")
    elif state == "FAILURE":
        status.error = f"{type(info).__name__}: {info}"
    return status


def book_status(app: Celery, storage: Storage, book_id: str) -> BookStatus | None:
    """The book's status, or None when no book with that id was submitted."""
    ledger = BookLedger(storage, book_id)
    record = ledger.submission()
    if record is None:
        return None
    cancelled = ledger.cancelled()
    chapters = [_chapter(app, ledger, entry, cancelled) for entry in record.chapters]
    status = BookStatus(book_id=book_id, title=record.title, submitted_at=record.submitted_at,
                        chapters=chapters, assembly_task_id=record.assembly_task_id, cancelled=cancelled)
    status.assembly_state, outcome = task_meta(app, record.assembly_task_id)
    if status.assembly_state == "SUCCESS":
        status.result = outcome
    elif status.assembly_state == "FAILURE" and not cancelled:
        status.error = f"{type(outcome).__name__}: {outcome}"
    elif ledger.book_done(record):  # assembled, and the backend forgot it
        status.assembly_state = "SUCCESS"
        status.result = storage.get_json(f"{book_id}/manifest.json")
    if cancelled and status.assembly_state != "SUCCESS":
        status.assembly_state = "REVOKED"
    status.counts = {phase: sum(c.phase == phase for c in chapters) for phase in PHASES}
    return status
