"""Traffic traces: books of chapters arriving over a day, from a seeded generator or a file.

A trace fixes the work as well as the arrivals (each chapter's characters and synthesis seconds), so every
policy in a comparison serves exactly the same chapters. Times are seconds from the start of a UTC day.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HOUR = 3600.0
DAY = 24 * HOUR

#: Synthesis seconds per character of the simulated GPU (what SCALER_SECONDS_PER_CHAR should measure).
SECONDS_PER_CHAR = 0.004
#: Seconds each chapter costs beyond its characters (model warm-up of the chapter, upload, bookkeeping).
CHAPTER_OVERHEAD_S = 5.0
#: Chapter length: log-normal around a median of 15,000 characters (about 25 minutes of audio).
MEDIAN_CHAPTER_CHARS = 15_000
CHAPTER_CHARS_SIGMA = 0.6
MIN_CHAPTER_CHARS, MAX_CHAPTER_CHARS = 500, 120_000
#: Chapters per book, uniform.
MIN_BOOK_CHAPTERS, MAX_BOOK_CHAPTERS = 8, 40

SPIKE_CHAPTERS = 10_000
SPIKE_SECONDS = 300.0
SPIKE_AT = 13 * HOUR


@dataclass(frozen=True)
class Chapter:
    """One chapter task: when it is queued, its size and how long a GPU takes to synthesize it."""

    arrival_s: float
    book: int
    chars: int
    work_s: float


@dataclass(frozen=True)
class Trace:
    """Chapters sorted by arrival; `duration_s` is the span the trace describes (a day for the built-ins)."""

    name: str
    duration_s: float
    chapters: tuple[Chapter, ...]

    @property
    def total_work_s(self) -> float:
        return sum(c.work_s for c in self.chapters)

    def hourly_chapters(self) -> list[int]:
        """Chapters arriving in each hour of the trace."""
        counts = [0] * max(1, math.ceil(self.duration_s / HOUR))
        for chapter in self.chapters:
            counts[min(int(chapter.arrival_s // HOUR), len(counts) - 1)] += 1
        return counts

    def peak_hour_work_s(self) -> float:
        """GPU seconds of the chapters arriving in the busiest clock hour."""
        work = [0.0] * max(1, math.ceil(self.duration_s / HOUR))
        for chapter in self.chapters:
            work[min(int(chapter.arrival_s // HOUR), len(work) - 1)] += chapter.work_s
        return max(work)


def chapter_work_s(chars: int, rng: random.Random) -> float:
    """Synthesis seconds of a chapter: characters x seconds per character, with 15 % noise."""
    return round(CHAPTER_OVERHEAD_S + chars * SECONDS_PER_CHAR * rng.lognormvariate(0.0, 0.15), 3)


def book_chapters(arrival_s: float, book: int, rng: random.Random, count: int | None = None) -> list[Chapter]:
    """One book's chapters, all queued at `arrival_s` (the book task fans them out at once)."""
    count = count if count is not None else rng.randint(MIN_BOOK_CHAPTERS, MAX_BOOK_CHAPTERS)
    chapters = []
    for _ in range(count):
        chars = int(rng.lognormvariate(math.log(MEDIAN_CHAPTER_CHARS), CHAPTER_CHARS_SIGMA))
        chars = min(max(chars, MIN_CHAPTER_CHARS), MAX_CHAPTER_CHARS)
        chapters.append(Chapter(arrival_s, book, chars, chapter_work_s(chars, rng)))
    return chapters


def poisson_books(rate_per_hour: Callable[[float], float], peak_per_hour: float, start_s: float, end_s: float,
                  rng: random.Random, first_book: int = 0) -> list[Chapter]:
    """Books arriving as a Poisson process of varying rate (thinning), from `start_s` to `end_s`."""
    chapters: list[Chapter] = []
    t, book = start_s, first_book
    while True:
        t += rng.expovariate(peak_per_hour / HOUR)
        if t >= end_s:
            return chapters
        if rng.random() * peak_per_hour <= rate_per_hour(t):
            chapters.extend(book_chapters(round(t, 3), book, rng))
            book += 1


def diurnal_rate(t: float, trough: float = 1.0, peak: float = 36.0, trough_at: float = 4 * HOUR) -> float:
    """Books per hour: a cosine day, lowest at 04:00 UTC and highest twelve hours later."""
    phase = 2 * math.pi * ((t - trough_at) % DAY) / DAY
    return trough + (peak - trough) * (1 - math.cos(phase)) / 2


def trickle(seed: int = 1, books_per_hour: float = 2.0) -> Trace:
    """The testing phase: a flat trickle of a few books an hour all day."""
    rng = random.Random(f"trickle:{seed}")
    return _trace("trickle", DAY, poisson_books(lambda t: books_per_hour, books_per_hour, 0.0, DAY, rng))


def diurnal(seed: int = 1) -> Trace:
    """A day of traffic: about one book an hour at night, 36 an hour in the late afternoon."""
    rng = random.Random(f"diurnal:{seed}")
    return _trace("diurnal", DAY, poisson_books(diurnal_rate, diurnal_rate(16 * HOUR), 0.0, DAY, rng))


def diurnal_spike(seed: int = 1) -> Trace:
    """The diurnal day plus a viral spike: 10,000 chapters queued within five minutes at 13:00 UTC."""
    day = diurnal(seed)
    rng = random.Random(f"spike:{seed}")
    spike: list[Chapter] = []
    book = 1 + max((c.book for c in day.chapters), default=0)
    while len(spike) < SPIKE_CHAPTERS:
        count = min(rng.randint(MIN_BOOK_CHAPTERS, MAX_BOOK_CHAPTERS), SPIKE_CHAPTERS - len(spike))
        spike.extend(book_chapters(round(SPIKE_AT + rng.random() * SPIKE_SECONDS, 3), book, rng, count))
        book += 1
    return _trace("diurnal-spike", DAY, [*day.chapters, *spike])


def lull(seed: int = 1) -> Trace:
    """A busy morning, then eighteen hours with a single book, then an evening's work."""
    rng = random.Random(f"lull:{seed}")
    morning = poisson_books(lambda t: 12.0, 12.0, 0.0, 3 * HOUR, rng)
    lone = book_chapters(12 * HOUR, 10_000, rng, count=3)
    evening = poisson_books(lambda t: 12.0, 12.0, 21 * HOUR, DAY, rng, first_book=20_000)
    return _trace("lull", DAY, [*morning, *lone, *evening])


#: The built-in traces by name (`audiobook simulate --trace NAME`).
TRACES: dict[str, Callable[[int], Trace]] = {
    "trickle": trickle,
    "diurnal": diurnal,
    "diurnal-spike": diurnal_spike,
    "lull": lull,
}


def repeated(name_or_path: str, seed: int, duration_s: float) -> Trace:
    """A trace played again and again (a built-in one with the next seed each time) until it covers `duration_s`:
    the long runs of `audiobook simulate --faults`."""
    chapters: list[Chapter] = []
    start, round_ = 0.0, 0
    while start < duration_s:
        part = get_trace(name_or_path, seed + round_ if name_or_path in TRACES else seed)
        span = max(part.duration_s, part.chapters[-1].arrival_s if part.chapters else 0.0, HOUR)
        chapters += [Chapter(c.arrival_s + start, c.book + 1_000_000 * round_, c.chars, c.work_s)
                     for c in part.chapters if c.arrival_s + start < duration_s]
        start, round_ = start + span, round_ + 1
    return _trace(f"{Path(name_or_path).stem} x{round_}", duration_s, chapters)


def _trace(name: str, duration_s: float, chapters: Iterable[Chapter]) -> Trace:
    return Trace(name, duration_s, tuple(sorted(chapters, key=lambda c: (c.arrival_s, c.book))))


class TraceError(ValueError):
    """A trace name or file that cannot be used; the message says which and why."""


def get_trace(name_or_path: str, seed: int = 1) -> Trace:
    """A built-in trace by name, or a trace file (.json or .csv) by path."""
    if name_or_path in TRACES:
        return TRACES[name_or_path](seed)
    path = Path(name_or_path)
    if path.suffix.lower() in (".json", ".csv"):
        return load_trace(path, seed)
    raise TraceError(f"unknown trace {name_or_path!r}: use one of {', '.join(TRACES)} or a .json/.csv file")


def load_trace(path: Path, seed: int = 1) -> Trace:
    """A trace file: rows of `arrival_s, book, chars[, work_s]` (CSV with a header, or a JSON list of objects,
    or an object with `chapters` and optional `duration_s`). A missing work_s is drawn from the chars.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise TraceError(f"cannot read trace {path}: {exc.strerror}") from None
    duration_s: float | None = None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            if isinstance(data, dict):
                duration_s = data.get("duration_s")
                data = data.get("chapters", [])
            rows = list(data)
        else:
            rows = list(csv.DictReader(text.splitlines()))
        rng = random.Random(f"file:{seed}")
        chapters = []
        for row in rows:
            chars = int(row["chars"])
            work = row.get("work_s")
            chapters.append(Chapter(float(row["arrival_s"]), int(row.get("book", 0)), chars,
                                    float(work) if work not in (None, "") else chapter_work_s(chars, rng)))
    except (ValueError, KeyError, TypeError) as exc:
        raise TraceError(f"bad trace file {path}: {type(exc).__name__}: {exc}") from None
    if any(c.arrival_s < 0 or c.chars < 0 or c.work_s <= 0 for c in chapters):
        raise TraceError(f"bad trace file {path}: arrival_s and chars must be >= 0 and work_s > 0")
    last = max((c.arrival_s for c in chapters), default=0.0)
    return _trace(path.stem, float(duration_s) if duration_s is not None else last, chapters)


def save_trace(trace: Trace, path: Path) -> None:
    """Write a trace as CSV or JSON (by suffix), so a generated day can be edited and replayed."""
    rows = [{"arrival_s": c.arrival_s, "book": c.book, "chars": c.chars, "work_s": c.work_s}
            for c in trace.chapters]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps({"duration_s": trace.duration_s, "chapters": rows}))
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["arrival_s", "book", "chars", "work_s"])
        writer.writeheader()
        writer.writerows(rows)
