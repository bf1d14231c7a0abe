"""A book's ledger in storage: what was submitted (texts included), what finished, whether it was cancelled.

The broker and the result backend may forget a book (Redis restarted empty, results expired); storage does
not, so it is the record that status, resume, cancel and resubmission read. Keys under `<book_id>/`, named so
no chapter id can take them (chapter ids start with a letter or a digit):

| key | written by | holds |
|---|---|---|
| `submission.json` | synthesize_book, resume | the Submission: chapters, their task ids, the assembly task id |
| `_texts/<chapter_id>.txt` | synthesize_book | the chapter's text, so the book can be redone |
| `_done/<chapter_id>.json` | the chapter task, after its audio is stored | `{task_id, result}` |
| `_done/_book.json` | assembly, after the manifest and book file | `{assembly_task_id, manifest_uri}` |
| `_cancelled.json` | cancel | `{cancelled_at}` |
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from synth.storage import Storage


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChapterEntry:
    chapter_id: str
    title: str | None
    characters: int
    task_id: str
    text_sha256: str | None = None


@dataclass(frozen=True)
class Submission:
    """The submission record: enough, with the texts beside it, to redo the book."""

    book_id: str
    chapters: tuple[ChapterEntry, ...]
    assembly_task_id: str
    submitted_at: float
    task_id: str | None = None  # the synthesize_book task that accepted it
    title: str | None = None
    author: str | None = None
    output: str = "m4b"
    voice: str | None = None
    format: str | None = None  # of the chapter files
    seed: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # passed to every chapter and into the manifest
    cover: str | None = None  # storage key of the cover art
    resumed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"chapters": [asdict(c) for c in self.chapters]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Submission:
        known = set(cls.__dataclass_fields__)
        chapter_fields = set(ChapterEntry.__dataclass_fields__)
        chapters = tuple(ChapterEntry(**{k: v for k, v in c.items() if k in chapter_fields})
                         for c in data["chapters"])
        return cls(**{k: v for k, v in data.items() if k in known and k != "chapters"}, chapters=chapters)

    @property
    def chapter_ids(self) -> list[str]:
        return [c.chapter_id for c in self.chapters]

    def identity(self) -> tuple[Any, ...]:
        """What makes two submissions the same book: same chapters, texts and voice, same outputs."""
        return (tuple((c.chapter_id, c.title, c.text_sha256) for c in self.chapters), self.title, self.author,
                self.output, self.voice, self.format, self.seed, sorted(self.metadata.items()), self.cover)

    def receipt(self) -> dict[str, Any]:
        """What synthesize_book returns for this submission."""
        return {"book_id": self.book_id, "chapters": len(self.chapters), "assembly_task_id": self.assembly_task_id,
                "chapter_task_ids": [c.task_id for c in self.chapters]}

    def with_task_ids(self, chapter_task_ids: dict[str, str], assembly_task_id: str) -> Submission:
        """The same submission with new task ids for some chapters and a new assembly (a resume)."""
        chapters = tuple(replace(c, task_id=chapter_task_ids.get(c.chapter_id, c.task_id)) for c in self.chapters)
        return replace(self, chapters=chapters, assembly_task_id=assembly_task_id, resumed_at=time.time())


@dataclass
class BookLedger:
    storage: Storage
    book_id: str
    _done_listing: set[str] | None = field(default=None, repr=False)

    def _key(self, name: str) -> str:
        return f"{self.book_id}/{name}"

    # --- the submission -----------------------------------------------------------------------------------
    def submission(self) -> Submission | None:
        data = self.storage.get_json(self._key("submission.json"))
        return None if data is None else Submission.from_json(data)

    def save(self, submission: Submission) -> None:
        self.storage.put_json(self._key("submission.json"), submission.to_json())

    def put_text(self, chapter_id: str, text: str) -> None:
        self.storage.put_bytes(self._key(f"_texts/{chapter_id}.txt"), text.encode("utf-8"), "text/plain")

    def text(self, chapter_id: str) -> str | None:
        data = self.storage.get_bytes(self._key(f"_texts/{chapter_id}.txt"))
        return None if data is None else data.decode("utf-8")

    # --- what finished ------------------------------------------------------------------------------------
    def mark_done(self, chapter_id: str, task_id: str | None, result: dict[str, Any]) -> None:
        self.storage.put_json(self._key(f"_done/{chapter_id}.json"), {"task_id": task_id, "result": result})

    def done(self, chapter_id: str) -> dict[str, Any] | None:
        """`{task_id, result}` of the chapter's last finished run, or None."""
        return self.storage.get_json(self._key(f"_done/{chapter_id}.json"))

    def finished_result(self, entry: ChapterEntry) -> dict[str, Any] | None:
        """The chapter's result if this submission's run of it finished (its final object is in storage)."""
        if self._done_listing is None:
            prefix = self._key("_done/")
            self._done_listing = {k[len(prefix):].removesuffix(".json") for k in self.storage.list(prefix)}
        if entry.chapter_id not in self._done_listing:
            return None
        done = self.done(entry.chapter_id)
        return done["result"] if done is not None and done.get("task_id") == entry.task_id else None

    def mark_book_done(self, assembly_task_id: str | None, manifest_uri: str) -> None:
        self.storage.put_json(self._key("_done/_book.json"), {"assembly_task_id": assembly_task_id,
                                                              "manifest_uri": manifest_uri})

    def book_done(self, submission: Submission) -> bool:
        done = self.storage.get_json(self._key("_done/_book.json"))
        return done is not None and done.get("assembly_task_id") == submission.assembly_task_id

    # --- cancellation -------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self.storage.put_json(self._key("_cancelled.json"), {"cancelled_at": time.time()})

    def uncancel(self) -> None:
        self.storage.delete([self._key("_cancelled.json")])

    def cancelled(self) -> bool:
        return self.storage.exists(self._key("_cancelled.json"))
