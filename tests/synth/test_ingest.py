"""Book files in: EPUB built with ebooklib, Markdown and text split at headings, and every error path."""

from __future__ import annotations

from pathlib import Path

import pytest
from ebooklib import epub

from synth.errors import IngestError
from synth.ingest import read_book
from synth.ingest.text import split_chapters

CHAPTER_HTML = """<html xmlns="http://www.w3.org/1999/xhtml"><head><title>ignored</title>
<style>p {{ color: red; }}</style></head><body>
<h1>{title}</h1>
<p>First paragraph of {title},
   wrapped over two lines.</p>
<p>Second&#160;paragraph<br/>with a line break &amp; an entity.</p>
<script>var hidden = "never read";</script>
</body></html>"""


def build_epub(path: Path, *, toc: bool = True, cover_text: str = "") -> Path:
    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("The Test Book")
    book.set_language("en")
    book.add_author("Ann Author")
    cover_html = f'<html><body><div><img src="cover.png" alt="Cover"/>{cover_text}</div></body></html>'
    cover = epub.EpubHtml(title="Cover", file_name="cover.xhtml", content=cover_html)
    titles = ["The Beginning", "The Middle", "The End"]
    chapters = [epub.EpubHtml(title=t, file_name=f"chap{i}.xhtml", content=CHAPTER_HTML.format(title=t))
                for i, t in enumerate(titles, start=1)]
    for item in [cover, *chapters]:
        book.add_item(item)
    if toc:
        book.toc = [epub.Link(f"chap{i}.xhtml", t, f"c{i}") for i, t in enumerate(titles, start=1)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [cover, "nav", *chapters]
    epub.write_epub(str(path), book)
    return path


def test_epub_becomes_three_chapters_with_their_titles(tmp_path: Path) -> None:
    book = read_book(build_epub(tmp_path / "book.epub"))

    assert [c.title for c in book.chapters] == ["The Beginning", "The Middle", "The End"]
    assert (book.title, book.author) == ("The Test Book", "Ann Author")
    first = book.chapters[0].text
    assert first.split("\n\n") == [
        "The Beginning",
        "First paragraph of The Beginning, wrapped over two lines.",
        "Second paragraph\nwith a line break & an entity.",
    ]
    assert all("never read" not in c.text and "color" not in c.text for c in book.chapters)
    assert "cover.xhtml" in book.skipped and "nav.xhtml" in book.skipped


def test_epub_without_toc_falls_back_to_spine_order(tmp_path: Path) -> None:
    book = read_book(build_epub(tmp_path / "book.epub", toc=False))
    assert [c.title for c in book.chapters] == ["The Beginning", "The Middle", "The End"]


def test_epub_front_matter_with_text_is_kept(tmp_path: Path) -> None:
    book = read_book(build_epub(tmp_path / "book.epub", cover_text="<p>For my mother.</p>"))
    assert [c.text for c in book.chapters][0] == "For my mother."
    assert len(book.chapters) == 4


def test_epub_toc_anchors_split_one_document(tmp_path: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("anchors")
    book.set_title("Anchors")
    page = epub.EpubHtml(title="All", file_name="all.xhtml", content=(
        "<html><body><h2 id='a'>One</h2><p>Text <span id='page7'/>one.</p><h2 id='b'>Two</h2><p>Text two.</p>"
        "</body></html>"))
    book.add_item(page)
    book.toc = [epub.Link("all.xhtml#a", "One", "a"), epub.Link("all.xhtml#b", "Two", "b")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", page]
    epub.write_epub(str(tmp_path / "anchors.epub"), book)

    chapters = read_book(tmp_path / "anchors.epub").chapters
    assert [(c.title, c.text) for c in chapters] == [("One", "One\n\nText one."), ("Two", "Two\n\nText two.")]


MARKDOWN = """# The Book

An opening *note* with a [link](https://example.com).

## Chapter One

First **bold** paragraph.

### A section
- item one
- item two

> a quote

## Chapter Two

```
# not a heading
```
Last words.
"""


@pytest.mark.parametrize("text,marker,expected_title,expected", [
    (MARKDOWN, None, "The Book", [
        (None, "An opening note with a link."),
        ("Chapter One", "First bold paragraph.\n\nA section\n\nitem one\nitem two\n\na quote"),
        ("Chapter Two", "# not a heading\nLast words."),
    ]),
    ("# One\nText one.\n# Two\nText two.\n", None, None, [("One", "Text one."), ("Two", "Text two.")]),
    ("No headings at all.\n\nTwo paragraphs.", None, None, [(None, "No headings at all.\n\nTwo paragraphs.")]),
    ("# Empty\n\n# Full\nWords.", None, None, [("Full", "Words.")]),
    ("Preface.\nCHAPTER I\nOne.\nCHAPTER II\nTwo.", r"CHAPTER [IVX]+$", None,
     [(None, "Preface."), ("CHAPTER I", "One."), ("CHAPTER II", "Two.")]),
    ("*** Part: Dawn\nA.\n*** Part: Dusk\nB.", r"\*\*\* Part: (.+)", None, [("Dawn", "A."), ("Dusk", "B.")]),
])
def test_markdown_and_marker_splits(text: str, marker: str | None, expected_title: str | None,
                                    expected: list[tuple[str | None, str]]) -> None:
    title, chapters = split_chapters(text, marker=marker)
    assert title == expected_title
    assert [(c.title, c.text) for c in chapters] == expected


def test_text_file_keeps_markup_but_drops_heading_marks(tmp_path: Path) -> None:
    path = tmp_path / "story.txt"
    path.write_text("# Part One\nIt cost *5*.\n## Scene\nMore.\n# Part Two\nEnd.\n", encoding="utf-8")
    book = read_book(path)
    assert book.title == "story"
    assert [(c.title, c.text) for c in book.chapters] == [
        ("Part One", "It cost *5*.\n\nScene\n\nMore."), ("Part Two", "End.")]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make,message", [
    (lambda d: d / "missing.epub", "no such file"),
    (lambda d: d / "missing.md", "no such file"),
    (lambda d: _write(d / "book.pdf", b"%PDF-1.4"), "unknown book format '.pdf'"),
    (lambda d: _write(d / "README", b"text"), r"unknown book format '\(no extension\)'"),
    (lambda d: _write(d / "empty.md", b"  \n\n# Only a heading\n"), "the book has no text"),
    (lambda d: _write(d / "empty.txt", b""), "the book has no text"),
    (lambda d: _write(d / "latin1.txt", "caf\xe9".encode("latin-1")), "not UTF-8 text"),
    (lambda d: _write(d / "broken.epub", b"this is not a zip file"), "cannot read EPUB"),
    (lambda d: _write(d / "truncated.epub", (d / "good.epub").read_bytes()[:400]), "cannot read EPUB"),
    (lambda d: (d / "folder.md").mkdir() or d / "folder.md", "not a file"),
])
def test_ingest_errors_name_the_file(tmp_path: Path, make, message: str) -> None:  # noqa: ANN001
    build_epub(tmp_path / "good.epub")
    path = make(tmp_path)
    with pytest.raises(IngestError, match=message) as info:
        read_book(path)
    assert str(path) in str(info.value)


def test_epub_without_text_is_an_empty_book(tmp_path: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("empty")
    book.set_title("Nothing")
    cover = epub.EpubHtml(title="Cover", file_name="cover.xhtml",
                          content="<html><body><img src='c.png'/></body></html>")
    book.add_item(cover)
    book.toc = [epub.Link("cover.xhtml", "Cover", "cover")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", cover]
    epub.write_epub(str(tmp_path / "empty.epub"), book)
    with pytest.raises(IngestError, match="the book has no text"):
        read_book(tmp_path / "empty.epub")


def test_bad_marker_is_an_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "book.txt"
    path.write_text("text", encoding="utf-8")
    with pytest.raises(IngestError, match="not a valid regular expression"):
        read_book(path, marker="(unclosed")


def test_chapter_payloads_fit_the_book_task(tmp_path: Path) -> None:
    from tasks.payloads import BookRequest

    book = read_book(build_epub(tmp_path / "book.epub"))
    payload = {"book_id": "b1", "title": book.title, "author": book.author, "chapters": book.chapter_payloads()}
    request = BookRequest.model_validate(payload)
    assert [c.chapter_id for c in request.chapters] == ["ch-001", "ch-002", "ch-003"]
