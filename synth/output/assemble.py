"""The book file of a finished book: chapter audio from storage in, `book_id/book.<ext>` in storage out."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synth.errors import StorageError
from synth.output.book import FORMATS, BookOptions, ChapterAudio, write_book
from synth.storage import Storage

BOOK_FORMATS = tuple(FORMATS)


def book_key(book_id: str, fmt: str) -> str:
    return f"{book_id}/book.{fmt}"


def assemble_book_file(storage: Storage, book_id: str, chapters: Sequence[dict[str, Any]], fmt: str, *,
                       title: str | None = None, author: str | None = None,
                       options: BookOptions | None = None) -> dict[str, Any]:
    """Download each chapter (`{key, title, ...}` chapter results, in order) to a temporary directory one
    at a time, encode the book and store it. Returns `book_uri`, `book_format`, `book_key` and the
    encoder's per-chapter marks and loudness.
    """
    with tempfile.TemporaryDirectory(prefix="assemble-") as tmp:
        work = Path(tmp)
        local = []
        for index, chapter in enumerate(chapters):
            key = chapter["key"]
            path = work / f"{index:05d}{Path(key).suffix}"
            if not storage.get_file(key, path):
                raise StorageError(f"chapter audio {key!r} is missing from storage")
            local.append(ChapterAudio(path=path, title=chapter.get("title")))
        target = work / f"book.{fmt}"
        book = write_book(local, target, fmt, title=title, author=author, options=options)
        key = book_key(book_id, fmt)
        uri = storage.put_file(key, target, FORMATS[fmt][0])
    return {"book_uri": uri, "book_key": key, "book_format": fmt} | book.to_dict()


def with_book(manifest: dict[str, Any], book: dict[str, Any]) -> dict[str, Any]:
    """The manifest plus the book file: `book_uri`, `book_format`, `book_target_lufs`, and per chapter the
    measured `loudness_lufs`, `peak_db` and applied `gain_db`."""
    chapters = [entry | {"loudness_lufs": encoded["loudness_lufs"], "peak_db": encoded["peak_db"],
                         "gain_db": encoded["gain_db"]}
                for entry, encoded in zip(manifest["chapters"], book["chapters"], strict=True)]
    return manifest | {"chapters": chapters, "book_uri": book["book_uri"], "book_key": book["book_key"],
                       "book_format": book["book_format"], "book_target_lufs": book["target_lufs"]}
