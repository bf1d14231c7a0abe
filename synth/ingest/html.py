"""(X)HTML to plain text with the stdlib parser: paragraphs kept, scripts and styles dropped.

Anchors (element ids) are recorded as paragraph positions, so a table-of-contents entry that points into the
middle of a document (`chapter.xhtml#part2`) can start a chapter there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "td", "th", "tr", "ul",
})
SKIPPED = frozenset({"head", "script", "style", "svg", "math", "template", "noscript"})
HEADINGS = frozenset({"h1", "h2", "h3"})
_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")


@dataclass
class Document:
    paragraphs: list[str] = field(default_factory=list)
    #: anchor id -> index of the first paragraph at or after it
    anchors: dict[str, int] = field(default_factory=dict)
    #: the document's <title>, and its first h1-h3 heading
    title: str | None = None
    heading: str | None = None


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc = Document()
        self.skip_depth = 0
        self.current: list[str] = []
        self.in_title = False
        self.title: list[str] = []
        self.heading_depth = 0
        self.heading: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in SKIPPED:
            self.skip_depth += 1
            return
        if tag in BLOCKS:
            self.flush()
        elif tag == "br":
            self.current.append("\n")
        if tag in HEADINGS and self.doc.heading is None:
            self.heading_depth += 1
        for name, value in attrs:
            # Not flushed: page markers carry ids mid-sentence. An anchor inside a paragraph points at it.
            if name in ("id", "name") and value and value not in self.doc.anchors:
                self.doc.anchors[value] = len(self.doc.paragraphs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag != "br":
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in SKIPPED:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if tag in HEADINGS and self.heading_depth:
            self.heading_depth -= 1
            if not self.heading_depth:
                self.doc.heading = _clean("".join(self.heading)) or None
        if tag in BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        data = data.replace("\n", " ")  # source line breaks are spaces; "\n" in `current` marks a <br>
        if self.in_title:
            self.title.append(data)
        if self.skip_depth:
            return
        self.current.append(data)
        if self.heading_depth:
            self.heading.append(data)

    def flush(self) -> None:
        text = "\n".join(_clean(line) for line in "".join(self.current).split("\n"))
        text = re.sub(r"\n{2,}", "\n", text).strip()
        if text:
            self.doc.paragraphs.append(text)
        self.current = []

    def close(self) -> None:
        super().close()
        self.flush()
        self.doc.title = _clean("".join(self.title)) or None


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text.replace("\n", " ")).strip()


def parse_html(markup: str) -> Document:
    """Paragraphs, anchors, title and first heading of one (X)HTML document."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    return parser.doc
