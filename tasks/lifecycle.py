"""Resume and cancel a submitted book, from its ledger in storage (tasks.ledger)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from celery import Celery, states, uuid

from settings import QUEUE_GPU
from synth.storage import Storage
from tasks.book import enqueue
from tasks.errors import BookInProgress
from tasks.ledger import BookLedger, Submission
from tasks.unqueue import remove_queued

#: States of a chapter some worker is working on (or holds for a retry).
RUNNING_STATES = frozenset({states.STARTED, "PROGRESS", states.RETRY})


class NoSuchBook(LookupError):
    """No submission record for that book id."""


@dataclass(frozen=True)
class ResumeReport:
    book_id: str
    requeued: list[str]  # chapter ids sent again
    finished: list[str]  # chapter ids whose final object is in storage: not synthesized again
    assembly_task_id: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CancelReport:
    book_id: str
    unqueued: int  # messages taken off the queue
    revoked: list[str]  # task ids revoked (chapters not finished, and the assembly)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _submission(ledger: BookLedger) -> Submission:
    submission = ledger.submission()
    if submission is None:
        raise NoSuchBook(f"no book with id {ledger.book_id!r} was submitted")
    return submission


def resume_book(app: Celery, storage: Storage, book_id: str, force: bool = False) -> ResumeReport:
    """Send again every chapter of the book that has not finished, then its assembly; finished chapters are
    taken from storage. Refused while a chapter is running (it would run twice) unless `force`."""
    ledger = BookLedger(storage, book_id)
    submission = _submission(ledger)
    unfinished = [e for e in submission.chapters if ledger.finished_result(e) is None]
    running = [e.chapter_id for e in unfinished
               if app.backend.get_task_meta(e.task_id).get("status") in RUNNING_STATES]
    if running and not force:
        raise BookInProgress(f"book {book_id!r}: chapters {', '.join(running)} are running; resume re-sends only "
                             "what the broker lost (wait for them, or --force)")
    texts = {}
    for entry in unfinished:
        text = ledger.text(entry.chapter_id)
        if text is None:
            raise NoSuchBook(f"book {book_id!r}: no text in storage for chapter {entry.chapter_id!r}; "
                             "submit the book again")
        texts[entry.chapter_id] = text
    resumed = submission.with_task_ids({chapter_id: uuid() for chapter_id in texts}, uuid())
    ledger.uncancel()
    ledger.save(resumed)  # before sending: status shows the new task ids from the start
    enqueue(resumed, texts)
    return ResumeReport(book_id, requeued=list(texts),
                        finished=[e.chapter_id for e in submission.chapters if e.chapter_id not in texts],
                        assembly_task_id=resumed.assembly_task_id)


def cancel_book(app: Celery, storage: Storage, book_id: str) -> CancelReport:
    """Stop spending on a book: mark it cancelled in storage (later deliveries stop at once), take its queued
    chapters off the queue, revoke and terminate the running ones, and record them REVOKED."""
    ledger = BookLedger(storage, book_id)
    submission = _submission(ledger)
    ledger.cancel()
    open_ids = [e.task_id for e in submission.chapters if ledger.finished_result(e) is None]
    unqueued = remove_queued(app, QUEUE_GPU, open_ids)
    revoked = open_ids + [submission.assembly_task_id]
    app.control.revoke(revoked, terminate=True, signal="SIGTERM")
    for task_id in revoked:
        if app.backend.get_task_meta(task_id).get("status") not in states.READY_STATES:
            app.backend.mark_as_revoked(task_id, "book cancelled")
    return CancelReport(book_id, unqueued, revoked)
