"""What a book says about itself: EPUB title, author and cover art; a Markdown front matter block."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from ebooklib import epub

from synth.images import image_type
from synth.ingest import read_book

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def epub_with(path: Path, cover: str) -> Path:
    book = epub.EpubBook()
    book.set_identifier("covered")
    book.set_title("Covered")
    book.add_author("Ann Author")
    book.add_author("Bo Second")
    if cover == "epub3":  # a manifest item with properties="cover-image" (what set_cover writes)
        book.set_cover("cover.png", png(), create_page=False)
    elif cover == "epub2":  # only <meta name="cover" content="id"/> names a plain image
        book.add_item(epub.EpubImage(uid="art", file_name="images/art.png", media_type="image/png", content=png()))
        book.add_metadata(None, "meta", "", {"name": "cover", "content": "art"})
    elif cover == "gif":
        book.set_cover("cover.gif", b"GIF89a" + b"\x00" * 20, create_page=False)
    page = epub.EpubHtml(title="One", file_name="one.xhtml", content="<html><body><p>Text one.</p></body></html>")
    book.add_item(page)
    book.toc = [epub.Link("one.xhtml", "One", "one")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", page]
    epub.write_epub(str(path), book)
    return path


@pytest.mark.parametrize("cover", ["epub3", "epub2"])
def test_epub_cover_title_and_authors(tmp_path: Path, cover: str) -> None:
    book = read_book(epub_with(tmp_path / "b.epub", cover))
    assert (book.title, book.author) == ("Covered", "Ann Author, Bo Second")
    assert book.cover is not None and book.cover.data == png() and book.cover.suffix == ".png"
    assert [c.text for c in book.chapters] == ["Text one."]


@pytest.mark.parametrize("cover", ["none", "gif"])
def test_no_cover_or_one_a_book_file_cannot_hold(tmp_path: Path, cover: str) -> None:
    assert read_book(epub_with(tmp_path / "b.epub", cover)).cover is None


def test_image_types() -> None:
    assert (image_type(JPEG), image_type(png()), image_type(b"GIF89a"), image_type(b"")) == ("jpeg", "png", None,
                                                                                                None)


def test_markdown_front_matter_names_the_book_and_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "b.md"
    path.write_text("---\ntitle: \"The Ship\"\nauthor: A. N. Example\nlang: en\n---\n\n# One\n\nText one.\n")
    book = read_book(path)
    assert (book.title, book.author) == ("The Ship", "A. N. Example")
    assert [(c.title, c.text) for c in book.chapters] == [("One", "Text one.")]


@pytest.mark.parametrize("suffix,text", [
    (".md", "---\nSome prose: with a colon.\nAnd a second line.\n---\n\nMore."),  # a rule, not front matter
    (".txt", "---\ntitle: Not front matter in plain text\n---\nText."),
])
def test_text_that_only_looks_like_front_matter_is_kept(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"b{suffix}"
    path.write_text(text)
    book = read_book(path)
    assert book.title == "b" and book.author is None
    spoken = " ".join(c.text for c in book.chapters)
    assert ("Some prose" in spoken) if suffix == ".md" else ("title: Not front matter" in spoken)


def test_the_sample_book_has_a_title_and_an_author() -> None:
    book = read_book(Path(__file__).resolve().parents[2] / "samples" / "book.md")
    assert book.title == "The Ship Without Lights" and book.author and len(book.chapters) == 4
