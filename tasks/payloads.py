"""Payload schemas of every task. Bad input is rejected at once, naming each bad field, never retried."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tasks.errors import InvalidPayload

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_id(value: str) -> str:
    if "/" in value or "\\" in value:
        raise ValueError("must not contain path separators")
    if ".." in value:
        raise ValueError("must not contain '..'")
    if _CONTROL.search(value) or any(ch.isspace() for ch in value):
        raise ValueError("must not contain control characters or whitespace")
    if not _ID.match(value):
        raise ValueError("must start with a letter or digit and use only letters, digits, '.', '_' and '-'")
    return value


def _check_label(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    _check_utf8(value)
    return value


def _check_utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"is not valid UTF-8 (lone surrogate at position {exc.start})") from None
    return value


Identifier = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_check_id)]
Label = Annotated[str, Field(max_length=500), AfterValidator(_check_label)]
Voice = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_check_id)]
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]
COVER_SUFFIXES = (".jpg", ".jpeg", ".png")


def _check_storage_key(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
        raise ValueError("must be a relative storage key without empty, '.' or '..' parts")
    if _CONTROL.search(value) or any(ch.isspace() for ch in value):
        raise ValueError("must not contain control characters or whitespace")
    if not value.lower().endswith(COVER_SUFFIXES):
        raise ValueError(f"must end in one of {', '.join(COVER_SUFFIXES)}")
    return value


CoverKey = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_check_storage_key)]
Metadata = Annotated[dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=500)]],
                     Field(max_length=32)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_text(value: str, info: ValidationInfo) -> str:
    _check_utf8(value)
    if not value.strip():
        raise ValueError("must not be empty or whitespace only")
    limit = (info.context or {}).get("max_chars")
    if limit is not None and len(value) > limit:
        raise ValueError(f"has {len(value)} characters; the maximum is {limit} (AUDIOBOOK_MAX_CHAPTER_CHARS)")
    return value


class ChapterRequest(Payload):
    """Keyword arguments of `audiobook.synthesize_chapter`."""

    book_id: Identifier
    chapter_id: Identifier
    text: str
    voice: Voice | None = None
    title: Label | None = None
    format: Literal["wav", "flac"] = "wav"
    seed: Seed | None = Field(None, description="fixes the model's noise: same input, same audio")
    metadata: Metadata = Field(default_factory=dict, description="echoed back untouched in the result")

    _text = field_validator("text")(_check_text)


class BookChapter(Payload):
    chapter_id: Identifier
    title: Label | None = None
    text: str

    _text = field_validator("text")(_check_text)


class BookRequest(Payload):
    """Keyword arguments of `audiobook.synthesize_book`."""

    book_id: Identifier
    chapters: Annotated[list[BookChapter], Field(min_length=1, max_length=500)]
    title: Label | None = None
    author: Label | None = None
    voice: Voice | None = None
    format: Literal["wav", "flac"] | None = Field(
        None, description="chapter files; unset means flac when a book file is made (lossless input), else wav")
    output: Literal["m4b", "mp3", "flac", "none"] = Field(
        "m4b", description="the book file assembled after all chapters: m4b (AAC, chapter marks), mp3, flac, none")
    seed: Seed | None = None
    metadata: Metadata = Field(default_factory=dict, description="passed to every chapter and into the manifest "
                               "(e.g. a customer id, for `audiobook usage --by`)")
    cover: CoverKey | None = Field(None, description="storage key of a JPEG/PNG under `<book_id>/`: cover art")

    @field_validator("cover")
    @classmethod
    def _cover_in_book(cls, cover: str | None, info: ValidationInfo) -> str | None:
        book_id = info.data.get("book_id")
        if cover is not None and book_id is not None and not cover.startswith(f"{book_id}/"):
            raise ValueError(f"must lie under the book's own prefix '{book_id}/'")
        return cover

    @property
    def chapter_format(self) -> Literal["wav", "flac"]:
        return self.format or ("wav" if self.output == "none" else "flac")

    @field_validator("chapters")
    @classmethod
    def _unique_ids(cls, chapters: list[BookChapter]) -> list[BookChapter]:
        seen: set[str] = set()
        for chapter in chapters:
            if chapter.chapter_id in seen:
                raise ValueError(f"chapter_id {chapter.chapter_id!r} appears twice")
            seen.add(chapter.chapter_id)
        return chapters


P = TypeVar("P", bound=Payload)


def describe(exc: ValidationError) -> str:
    """'field: problem; other.field: problem' for every error pydantic found."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def validate(schema: type[P], task: str, args: tuple[Any, ...], kwargs: dict[str, Any], **context: Any) -> P:
    """Validate a task's arguments, raising InvalidPayload that names every bad field."""
    if args:
        raise InvalidPayload(f"{task}: takes keyword arguments only (got {len(args)} positional)")
    try:
        return schema.model_validate(kwargs, context=context)
    except ValidationError as exc:
        raise InvalidPayload(f"{task}: {describe(exc)}") from None


class PreviewRequest(Payload):
    """Keyword arguments of `audiobook.synthesize_preview`; the text may be long, only its head is spoken."""

    text: str
    requester: Identifier = Field(description="user or service asking; previews are rate-limited per requester")
    voice: Voice | None = None
    book_id: Identifier | None = None
    chapter_id: Identifier | None = None
    format: Literal["wav", "flac"] = "wav"

    _text = field_validator("text")(_check_text)

    @field_validator("chapter_id")
    @classmethod
    def _chapter_needs_book(cls, chapter_id: str | None, info: ValidationInfo) -> str | None:
        if chapter_id is not None and info.data.get("book_id") is None:
            raise ValueError("needs book_id")
        return chapter_id
