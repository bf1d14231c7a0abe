"""The book file of a finished book: chapter audio from storage in, `book_id/book.<ext>` in storage out."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synth.errors import StorageError
from synth.images import image_type
from synth.output.book import FORMATS, BookOptions, ChapterAudio, write_book
from synth.storage import Storage

BOOK_FORMATS = tuple(FORMATS)


def book_key(book_id: str, fmt: str) -> str:
    return f"{book_id}/book.{fmt}"


def assemble_book_file(storage: Storage, book_id: str, chapters: Sequence[dict[str, Any]], fmt: str, *,
                       title: str | None = None, author: str | None = None, cover_key: str | None = None,
                       options: BookOptions | None = None) -> dict[str, Any]:
    """Download each chapter (`{key, title, ...}` chapter results, in order) to a temporary directory one
    at a time, encode the book and store it. Returns `book_uri`, `book_format`, `book_key` and the
    encoder's per-chapter marks and loudness. A cover that is missing or not an image is left out, with a
    line in `warnings`: the book is not lost for its art.
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
        cover, warnings = _fetch_cover(storage, cover_key, work) if cover_key else (None, [])
        target = work / f"book.{fmt}"
        book = write_book(local, target, fmt, title=title, author=author, cover=cover, options=options)
        key = book_key(book_id, fmt)
        uri = storage.put_file(key, target, FORMATS[fmt][0])
    return {"book_uri": uri, "book_key": key, "book_format": fmt, "warnings": warnings} | book.to_dict()


def _fetch_cover(storage: Storage, key: str, work: Path) -> tuple[Path | None, list[str]]:
    path = work / f"cover{Path(key).suffix.lower()}"
    if not storage.get_file(key, path):
        return None, [f"cover {key!r} is missing from storage; the book has no cover art"]
    if image_type(path.read_bytes()[:16]) is None:
        return None, [f"cover {key!r} is not a JPEG or PNG image; the book has no cover art"]
    return path, []


def with_book(manifest: dict[str, Any], book: dict[str, Any]) -> dict[str, Any]:
    """The manifest plus the book file: `book_uri`, `book_format`, `book_target_lufs`, the decoded file's
    `book_loudness_lufs` and `book_peak_db`, and per chapter the measured `loudness_lufs`, `peak_db` and
    applied `gain_db`."""
    chapters = [entry | {"loudness_lufs": encoded["loudness_lufs"], "peak_db": encoded["peak_db"],
                         "gain_db": encoded["gain_db"]}
                for entry, encoded in zip(manifest["chapters"], book["chapters"], strict=True)]
    return manifest | {"chapters": chapters, "book_uri": book["book_uri"], "book_key": book["book_key"],
                       "book_format": book["book_format"], "book_target_lufs": book["target_lufs"],
                       "book_loudness_lufs": book["loudness_lufs"], "book_peak_db": book["peak_db"],
                       "warnings": manifest.get("warnings", []) + book["warnings"]}
