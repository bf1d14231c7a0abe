"""What ingest returns: a book's metadata and its chapters as plain text, in reading order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synth.images import SUFFIXES

MAX_TITLE_CHARS = 200


def clip_title(title: str | None) -> str | None:
    """A title on one line, at most MAX_TITLE_CHARS long (payload labels are short); None when empty."""
    if not title:
        return None
    title = " ".join(title.split())
    if not title:
        return None
    return title if len(title) <= MAX_TITLE_CHARS else title[: MAX_TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Chapter:
    title: str | None
    #: Plain text; paragraphs are separated by a blank line.
    text: str


@dataclass(frozen=True)
class Cover:
    """Cover art as the book file holds it."""

    data: bytes = field(repr=False)
    #: `jpeg` or `png`
    kind: str

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.kind]


@dataclass(frozen=True)
class Book:
    title: str | None
    author: str | None
    chapters: tuple[Chapter, ...]
    #: Parts left out because they hold no text (cover pages, empty navigation), by name, for reporting.
    skipped: tuple[str, ...] = field(default=())
    cover: Cover | None = None

    def chapter_payloads(self, id_prefix: str = "ch") -> list[dict[str, Any]]:
        """Chapters as `audiobook.synthesize_book` takes them: `{chapter_id, title, text}`, ids `ch-001`..."""
        width = max(3, len(str(len(self.chapters))))
        return [{"chapter_id": f"{id_prefix}-{i:0{width}d}", "title": c.title, "text": c.text}
                for i, c in enumerate(self.chapters, start=1)]
