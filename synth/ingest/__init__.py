"""Book files in, chapters of plain text out: `.txt`/`.md` split at headings, `.epub` by its table of contents.

Pure: no Celery, no storage. Every failure is an IngestError whose message names the file.
"""

from __future__ import annotations

from pathlib import Path

from synth.errors import IngestError
from synth.ingest.model import Book, Chapter

__all__ = ["SUFFIXES", "Book", "Chapter", "read_book"]

SUFFIXES = (".txt", ".md", ".markdown", ".epub")


def read_book(path: str | Path, *, marker: str | None = None) -> Book:
    """Read `path` into chapters. `marker` (text files only) is a regular expression for chapter lines.

    Without a marker, text files split at Markdown `#` headings. Raises IngestError for a missing file,
    an unknown extension, an unreadable EPUB or a book with no text.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise IngestError(f"{path}: unknown book format {suffix or '(no extension)'!r}; "
                          f"use one of {', '.join(SUFFIXES)}")
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a file")
    if suffix == ".epub":
        from synth.ingest.epub import read_epub

        book = read_epub(path)
    else:
        from synth.ingest.text import read_text_book

        book = read_text_book(path, marker=marker, markdown=suffix != ".txt")
    if not book.chapters:
        raise IngestError(f"{path}: the book has no text")
    return book
