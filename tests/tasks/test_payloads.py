"""Payload validation: every kind of bad input gets an error naming the field."""

from __future__ import annotations

import pytest

from tasks.errors import InvalidPayload
from tasks.payloads import BookRequest, ChapterRequest, validate

OK = {"book_id": "book-1", "chapter_id": "ch_01", "text": "Hello there."}
TASK = "audiobook.synthesize_chapter"


def check(kwargs: dict, args: tuple = (), max_chars: int = 1000) -> ChapterRequest:
    return validate(ChapterRequest, TASK, args, kwargs, max_chars=max_chars)


def test_valid_payload_and_defaults() -> None:
    request = check(OK | {"voice": "default", "format": "flac", "seed": 7, "metadata": {"order": "42"}})
    assert (request.format, request.seed, request.metadata) == ("flac", 7, {"order": "42"})
    assert check(OK).format == "wav"


@pytest.mark.parametrize("change,message", [
    ({"text": ""}, "text: must not be empty"),
    ({"text": " \n\t "}, "text: must not be empty"),
    ({"text": "x" * 1001}, "text: has 1001 characters; the maximum is 1000"),
    ({"format": "mp3"}, "format: Input should be 'wav' or 'flac'"),
    ({"text": 42}, "text: Input should be a valid string"),
    ({"book_id": 7}, "book_id: Input should be a valid string"),
    ({"seed": "7"}, "seed: Input should be a valid integer"),
    ({"surprise": True}, "surprise: unknown field"),
    ({"book_id": "a/b"}, "book_id: must not contain path separators"),
    ({"chapter_id": "a\\b"}, "chapter_id: must not contain path separators"),
    ({"book_id": ".."}, "book_id: must not contain '..'"),
    ({"chapter_id": "x..y"}, "chapter_id: must not contain '..'"),
    ({"book_id": "a\x00b"}, "book_id: must not contain control characters"),
    ({"chapter_id": "a\nb"}, "chapter_id: must not contain control characters"),
    ({"book_id": ""}, "book_id: String should have at least 1 character"),
    ({"text": "ok \ud800 text"}, "text: is not valid UTF-8 (lone surrogate at position 3)"),
    ({"voice": "../etc"}, "voice: must not contain path separators"),
    ({"title": "bad\x07title"}, "title: must not contain control characters"),
    ({"metadata": {"k": 1}}, "metadata.k: Input should be a valid string"),
])
def test_bad_input_names_the_field(change: dict, message: str) -> None:
    with pytest.raises(InvalidPayload, match="^audiobook.synthesize_chapter: ") as info:
        check(OK | change)
    assert message in str(info.value)


def test_missing_fields_and_positional_args() -> None:
    with pytest.raises(InvalidPayload, match="text: Field required"):
        check({"book_id": "b", "chapter_id": "c"})
    with pytest.raises(InvalidPayload, match="keyword arguments only"):
        check(OK, args=("positional",))


def test_book_rejects_duplicate_and_empty_chapters() -> None:
    chapter = {"chapter_id": "c1", "text": "One."}
    with pytest.raises(InvalidPayload, match="chapter_id 'c1' appears twice"):
        validate(BookRequest, "audiobook.synthesize_book", (), {"book_id": "b", "chapters": [chapter, chapter]})
    with pytest.raises(InvalidPayload, match="chapters: List should have at least 1 item"):
        validate(BookRequest, "audiobook.synthesize_book", (), {"book_id": "b", "chapters": []})
    with pytest.raises(InvalidPayload, match=r"chapters.1.text: must not be empty"):
        validate(BookRequest, "audiobook.synthesize_book", (),
                 {"book_id": "b", "chapters": [chapter, {"chapter_id": "c2", "text": ""}]})
