"""What each synthesized chapter cost, kept in storage, and the totals finance reads (`audiobook usage`).

One record per chapter result, at `_usage/<book_id>/<chapter_id>/<content hash>.json` (no book id starts
with `_`, so the ledger never meets a book's files). The key follows the chapter's content key, so a record
written twice (a redelivered chapter) is one bill, not two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from synth.storage import Storage

LEDGER_PREFIX = "_usage/"
NO_GROUP = "(none)"


def usd_for(compute_seconds: float, usd_per_hour: float | None) -> float | None:
    """The GPU cost of `compute_seconds` on a worker priced `usd_per_hour`; None when the price is unknown."""
    return None if usd_per_hour is None else round(compute_seconds * usd_per_hour / 3600, 6)


@dataclass(frozen=True)
class ChapterUsage:
    """One chapter's bill: what it made, how long the GPU worked on it, and at what price."""

    book_id: str
    chapter_id: str
    characters: int
    audio_seconds: float
    compute_seconds: float
    usd_per_hour: float | None
    worker: str | None = None
    task_id: str | None = None
    model: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    finished_at: str = ""  # ISO 8601, UTC

    @property
    def usd(self) -> float | None:
        return usd_for(self.compute_seconds, self.usd_per_hour)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"usd": self.usd}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChapterUsage:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def finished(self) -> datetime:
        return parse_time(self.finished_at)


def ledger_key(chapter_key: str) -> str:
    """`_usage/book/chapter/<hash>.json` for the chapter audio at `book/chapter/<hash>.<format>`."""
    return LEDGER_PREFIX + chapter_key.rsplit(".", 1)[0] + ".json"


def record_usage(storage: Storage, chapter_key: str, usage: ChapterUsage, *, cached: bool) -> ChapterUsage:
    """Put `usage` in the ledger; returns what this call billed.

    A chapter returned from storage (`cached`) bills nothing new, unless its record is missing (the run that
    made it died between storing the audio and the record): then its compute time is billed now.
    """
    key = ledger_key(chapter_key)
    if cached and storage.exists(key):
        return ChapterUsage(**{**asdict(usage), "compute_seconds": 0.0})
    storage.put_json(key, usage.to_json())
    return usage


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time; naive values are UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_ledger(storage: Storage, since: datetime | None = None) -> list[ChapterUsage]:
    """Every usage record in storage finished at or after `since`, oldest first."""
    records = []
    for key in storage.list(LEDGER_PREFIX):
        data = storage.get_json(key) if key.endswith(".json") else None
        if not isinstance(data, dict):
            continue
        usage = ChapterUsage.from_json(data)
        if since is None or usage.finished >= since:
            records.append(usage)
    return sorted(records, key=lambda u: u.finished)


@dataclass(frozen=True)
class UsageTotal:
    """Totals of one group of chapters (one value of a metadata key, or everything)."""

    group: str
    books: int
    chapters: int
    characters: int
    audio_hours: float
    gpu_hours: float
    usd: float
    #: Chapters run by workers without a price: their GPU hours are counted, their cost is not.
    unpriced_chapters: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def total(group: str, records: Sequence[ChapterUsage]) -> UsageTotal:
    return UsageTotal(
        group=group, books=len({u.book_id for u in records}), chapters=len(records),
        characters=sum(u.characters for u in records),
        audio_hours=sum(u.audio_seconds for u in records) / 3600,
        gpu_hours=sum(u.compute_seconds for u in records) / 3600,
        usd=sum(u.usd or 0.0 for u in records),
        unpriced_chapters=sum(1 for u in records if u.usd is None and u.compute_seconds > 0))


def totals(records: Iterable[ChapterUsage], by: str | None = None) -> list[UsageTotal]:
    """One total per value of metadata key `by` (chapters without it under "(none)"), or one for all."""
    groups: dict[str, list[ChapterUsage]] = {}
    for usage in records:
        name = "all" if by is None else usage.metadata.get(by, NO_GROUP)
        groups.setdefault(name, []).append(usage)
    return [total(name, groups[name]) for name in sorted(groups)]


def book_usage(chapters: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A book manifest's usage: the sums of its chapters' `usage` fields."""
    usd = [c.get("usd") for c in chapters]
    return {"characters": sum(int(c["characters"]) for c in chapters),
            "audio_seconds": round(sum(float(c["audio_seconds"]) for c in chapters), 3),
            "compute_seconds": round(sum(float(c["compute_seconds"]) for c in chapters), 3),
            "usd": round(sum(u for u in usd if u is not None), 6),
            "unpriced_chapters": sum(1 for c, u in zip(chapters, usd, strict=True)
                                     if u is None and float(c["compute_seconds"]) > 0)}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
