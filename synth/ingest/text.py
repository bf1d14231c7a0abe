"""Plain-text and Markdown books: chapters start at `#` headings, or at lines matching a given marker.

Heading levels: chapters split at the shallowest heading level in the file, except that a single top-level
heading opening the file (before any text) is the book's title and chapters split at the next level down.
Deeper headings stay in the chapter text as lines of their own. Markdown markup is reduced to its text.
A Markdown file may open with a front matter block (`---`, `title: ...`, `author: ...`, `---`): it names the
book and its author and is not read aloud.
"""

from __future__ import annotations

import re
from pathlib import Path

from synth.errors import IngestError
from synth.ingest.model import Book, Chapter, clip_title

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_RULE = re.compile(r"^ {0,3}([-*_])( *\1){2,} *$")
# Markdown inline markup, reduced to the words a reader would say.
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), ""),  # images: alt text is a description, not book text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"<(https?://[^>]+)>"), r"\1"),  # autolinks
    (re.compile(r"<br\s*/?>", re.IGNORECASE), "\n"),
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline HTML tags
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*{1,3}|_{1,3})(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis
    (re.compile(r"~~(.+?)~~"), r"\1"),
]
_BLOCK_PREFIX = re.compile(r"^ {0,3}(?:>[ \t]?)+|^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_KEY_LINE = re.compile(r"^[A-Za-z][\w-]*[ \t]*:(?:[ \t].*)?$")
_FIELD = re.compile(r"^(title|author)[ \t]*:[ \t]*(.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)


def read_text_book(path: Path, *, marker: str | None = None, markdown: bool = True) -> Book:
    """Read a `.txt`/`.md` file; see the module docstring for how it is split."""
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc.strerror or exc}") from None
    front: dict[str, str] = {}
    if markdown:
        front, raw = front_matter(raw)
    try:
        title, chapters = split_chapters(raw, marker=marker, markdown=markdown)
    except re.error as exc:
        raise IngestError(f"chapter marker {marker!r} is not a valid regular expression: {exc}") from None
    return Book(title=clip_title(front.get("title")) or title or path.stem, author=clip_title(front.get("author")),
                chapters=tuple(chapters))


def front_matter(text: str) -> tuple[dict[str, str], str]:
    """(`title`/`author` of a leading `---` block, the text after it); no block: ({}, text)."""
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    # Only `key: value` lines make a front matter block; a rule with prose after it is book text.
    if match is None or not all(_KEY_LINE.match(line) for line in match.group(1).split("\n") if line.strip()):
        return {}, text
    fields = {key.lower(): value.strip("\"'") for key, value in _FIELD.findall(match.group(1))}
    return fields, text.replace("\r\n", "\n")[match.end():]


def split_chapters(text: str, *, marker: str | None = None, markdown: bool = True) -> tuple[str | None, list[Chapter]]:
    """(book title or None, chapters). Text before the first chapter line becomes an untitled chapter."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fenced = _fenced_lines(lines) if markdown else set()
    starts: dict[int, str | None]
    if marker is not None:
        pattern = re.compile(marker)
        starts = {i: clip_title(_marker_title(pattern.match(line.strip()), line))
                  for i, line in enumerate(lines) if i not in fenced and pattern.match(line.strip())}
        book_title = None
    else:
        starts, book_title = _heading_starts(lines, fenced)

    chapters: list[Chapter] = []
    title: str | None = None
    body: list[str] = []
    for i, line in enumerate(lines):
        heading = _HEADING.match(line) if marker is None and i not in fenced else None
        if i in starts:
            _add(chapters, title, body, markdown)
            title, body = starts[i], []
        elif heading:  # a deeper heading: a paragraph of its own, without its marks
            body.extend(["", _plain(heading.group(2)), ""])
        elif i not in fenced or not _FENCE.match(line):
            body.append(line)
    _add(chapters, title, body, markdown)
    return book_title, chapters


def _heading_starts(lines: list[str], fenced: set[int]) -> tuple[dict[int, str | None], str | None]:
    headings = {i: m for i, line in enumerate(lines) if i not in fenced and (m := _HEADING.match(line))}
    if not headings:
        return {}, None
    levels = {i: len(m.group(1)) for i, m in headings.items()}
    top = min(levels.values())
    first = min(headings)
    book_title = None
    only_top = [i for i, level in levels.items() if level == top] == [first]
    text_before = any(line.strip() for line in lines[:first])
    if only_top and not text_before and len(set(levels.values())) > 1:
        book_title = clip_title(_plain(headings[first].group(2)))
        del levels[first]
        top = min(levels.values())
    starts: dict[int, str | None] = {i: clip_title(_plain(headings[i].group(2)))
                                     for i, level in levels.items() if level == top}
    if book_title is not None:
        starts[first] = None  # text between the title and the first chapter is an untitled chapter
    return starts, book_title


def _fenced_lines(lines: list[str]) -> set[int]:
    """Indexes of lines inside (or opening/closing) fenced code blocks: never headings."""
    inside, fence, found = False, "", set()
    for i, line in enumerate(lines):
        match = _FENCE.match(line)
        if match and (not inside or match.group(1) == fence):
            inside, fence = not inside, match.group(1)
            found.add(i)
        elif inside:
            found.add(i)
    return found


def _add(chapters: list[Chapter], title: str | None, body: list[str], markdown: bool) -> None:
    text = _markdown_text(body) if markdown else _plain_text(body)
    if text:
        chapters.append(Chapter(title=title, text=text))


def _plain_text(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _markdown_text(lines: list[str]) -> str:
    out = []
    for line in lines:
        if _RULE.match(line) or _REFERENCE.match(line):
            out.append("")
            continue
        out.append(_plain(_BLOCK_PREFIX.sub("", line)))
    return _plain_text(out)


def _plain(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text.strip()


def _marker_title(match: re.Match[str] | None, line: str) -> str:
    if match is not None and match.re.groups and match.group(1):
        return match.group(1).strip()
    return line.strip()
