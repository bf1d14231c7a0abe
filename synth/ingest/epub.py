"""EPUB books through ebooklib: chapters from the table of contents, else one per spine document.

A table-of-contents entry starts a chapter at its document and anchor; the chapter runs to the next entry
in reading order. Spine text before the first entry (a title page) is a chapter of its own. Parts without
text (a cover image, an empty navigation page) are skipped and listed in `Book.skipped`; the navigation
document itself is never read aloud, nor are non-linear documents the table of contents does not name.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth.errors import IngestError
from synth.images import image_type
from synth.ingest.html import Document, parse_html
from synth.ingest.model import Book, Chapter, Cover, clip_title


@dataclass(frozen=True)
class _Entry:
    title: str | None
    document: int  # index into the reading documents
    paragraph: int


def read_epub(path: Path) -> Book:
    try:
        from ebooklib import ITEM_DOCUMENT, epub

        # ignore_ncx=False: EPUB 2 books have only an NCX table of contents; EPUB 3 ones fall back to nav.
        book = epub.read_epub(str(path), {"ignore_ncx": False})
        names, documents, skipped = _reading_documents(book, ITEM_DOCUMENT, epub.EpubNav)
    except Exception as exc:  # noqa: BLE001 - zip, XML and ebooklib errors all mean "unreadable"
        raise IngestError(f"{path}: cannot read EPUB: {exc}") from None

    entries = _toc_entries(book.toc, names, documents)
    if entries:
        chapters = _chapters_from_toc(entries, documents, skipped, names)
    else:
        chapters = _chapters_from_spine(documents, names, skipped)
    return Book(title=_metadata(book, "title") or path.stem, author=_metadata(book, "creator"),
                chapters=tuple(chapters), skipped=tuple(skipped), cover=_cover(book))


def _reading_documents(book: Any, document_type: int, nav_type: type) -> tuple[list[str], list[Document], list[str]]:
    """Spine documents in reading order (navigation and unreferenced non-linear ones left out)."""
    referenced = {href.split("#", 1)[0] for href, _ in _flatten(book.toc)}
    names, documents, skipped = [], [], []
    for idref, linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != document_type:
            continue
        name = item.get_name()
        if isinstance(item, nav_type) or "nav" in (getattr(item, "properties", None) or []):
            skipped.append(name)
            continue
        if str(linear).lower() == "no" and name not in referenced:
            skipped.append(name)
            continue
        names.append(name)
        documents.append(parse_html(item.get_content().decode("utf-8", errors="replace")))
    return names, documents, skipped


def _flatten(toc: Any) -> list[tuple[str, str | None]]:
    """(href, title) of every table-of-contents entry, depth first, in order."""
    found: list[tuple[str, str | None]] = []
    # ebooklib gives a list; a book with an empty table of contents may give a single empty Link instead.
    for node in toc if isinstance(toc, list) else [toc] if toc else []:
        if isinstance(node, (tuple, list)) and len(node) == 2:
            section, children = node
            if getattr(section, "href", None):
                found.append((section.href, getattr(section, "title", None)))
            found.extend(_flatten(children))
        elif getattr(node, "href", None):
            found.append((node.href, getattr(node, "title", None)))
        elif getattr(node, "file_name", None):  # an EpubHtml placed in the toc directly
            found.append((node.file_name, getattr(node, "title", None)))
    return found


def _toc_entries(toc: Any, names: list[str], documents: list[Document]) -> list[_Entry]:
    """Table-of-contents entries placed in the reading documents; entries pointing elsewhere are ignored."""
    index = {posixpath.normpath(name): i for i, name in enumerate(names)}
    by_base = {posixpath.basename(name): i for i, name in enumerate(names)}
    entries = []
    for href, title in _flatten(toc):
        file, _, anchor = href.partition("#")
        file = posixpath.normpath(file)
        document = index.get(file, by_base.get(posixpath.basename(file)))
        if document is not None:
            paragraph = documents[document].anchors.get(anchor, 0) if anchor else 0
            entries.append(_Entry(clip_title(title), document, paragraph))
    return entries


def _chapters_from_toc(entries: list[_Entry], documents: list[Document], skipped: list[str],
                       names: list[str]) -> list[Chapter]:
    positions = sorted(entries, key=lambda e: (e.document, e.paragraph))  # stable: ties keep the toc order
    front = None
    if (positions[0].document, positions[0].paragraph) != (0, 0):
        first = documents[0]
        positions.insert(0, _Entry(first.heading or first.title or "Front matter", 0, 0))
        front = positions[0]
    chapters = []
    ends = positions[1:] + [_Entry(None, len(documents), 0)]
    for start, end in zip(positions, ends, strict=True):
        text = _text_between(documents, start, end)
        if text:
            chapters.append(Chapter(title=clip_title(start.title), text=text))
        else:
            skipped.append(names[start.document] if start is front or not start.title else start.title)
    return chapters


def _chapters_from_spine(documents: list[Document], names: list[str], skipped: list[str]) -> list[Chapter]:
    chapters = []
    for name, document in zip(names, documents, strict=True):
        text = "\n\n".join(document.paragraphs)
        if text:
            chapters.append(Chapter(title=clip_title(document.heading or document.title), text=text))
        else:
            skipped.append(name)
    return chapters


def _text_between(documents: list[Document], start: _Entry, end: _Entry) -> str:
    paragraphs: list[str] = []
    for index in range(start.document, min(end.document, len(documents) - 1) + 1):
        first = start.paragraph if index == start.document else 0
        last = end.paragraph if index == end.document else None
        paragraphs.extend(documents[index].paragraphs[first:last])
    return "\n\n".join(paragraphs)


def _cover(book: Any) -> Cover | None:
    """The cover image: EPUB 3's `cover-image` item, else EPUB 2's `<meta name="cover">`; JPEG or PNG only."""
    from ebooklib import ITEM_COVER

    candidates = list(book.get_items_of_type(ITEM_COVER))
    for _, attributes in book.get_metadata("OPF", "meta"):
        if (attributes or {}).get("name") == "cover":
            item = book.get_item_with_id(attributes.get("content", ""))
            if item is not None:
                candidates.append(item)
    for item in candidates:
        data = item.get_content()
        kind = image_type(data[:16]) if data else None
        if kind is not None:
            return Cover(data=data, kind=kind)
    return None


def _metadata(book: Any, name: str) -> str | None:
    values = [value for value, _ in book.get_metadata("DC", name) if value and str(value).strip()]
    return clip_title(", ".join(str(v).strip() for v in values)) if values else None
