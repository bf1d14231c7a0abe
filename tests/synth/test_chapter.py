"""The chapter pipeline in-process on the tiny random VITS: output shape, determinism, resume, caching."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.chapter import AttemptsExhausted, ChapterJob, SynthOptions, batches, synthesize_chapter
from synth.engines.base import Engine
from synth.errors import ChapterPaused
from synth.storage import open_storage
from synth.text.chunk import chunk_text

TEXT = ("Chapter 1. It was 1984, and Dr. Smith paid $5.50 for the paper. "
        "The rain kept falling; nobody noticed.\n\n"
        "A second paragraph starts here! Does it end? It does.\n\n"
        "Third paragraph, with “quotes” and an em—dash, then the end.")
OPTIONS = SynthOptions(max_chunk_chars=40, max_batch_chars=80, max_batch_size=4, head_s=0.5, tail_s=1.0)


class Crash(Exception):
    pass


class CrashingEngine(Engine):
    """Wraps a real engine and dies after `batches` forward passes, like a worker killed mid-chapter."""

    def __init__(self, inner: Engine, batches: int) -> None:
        self.inner, self.left = inner, batches
        self.name, self.sample_rate = inner.name, inner.sample_rate

    def speakable(self, text: str) -> str:
        return self.inner.speakable(text)

    def voices(self) -> list[str]:
        return self.inner.voices()

    def synthesize(self, texts, *, voice=None, seed=None):  # noqa: ANN001, ANN201
        if self.left == 0:
            raise Crash("killed")
        self.left -= 1
        return self.inner.synthesize(texts, voice=voice, seed=seed)


def read(uri: str) -> tuple[np.ndarray, int]:
    return sf.read(uri.removeprefix("file://"), dtype="float32")


def test_chapter_audio_is_clean_and_levelled(tiny_engine: Engine, tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    seen: list[tuple[int, int, int]] = []
    result = synthesize_chapter(ChapterJob("book", "ch1", TEXT, seed=3), tiny_engine, storage, OPTIONS,
                                lambda *p: seen.append(p))
    audio, rate = read(result["uri"])
    assert rate == result["sample_rate"] == tiny_engine.sample_rate
    assert len(audio) == result["samples"] and result["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3)
    assert np.isfinite(audio).all()
    peak_db = 20 * math.log10(float(np.max(np.abs(audio))))
    assert peak_db <= -3.0
    assert result["characters"] == len(TEXT) and result["sentences"] >= 7
    assert result["key"].startswith("book/ch1/") and result["key"].endswith(".wav")
    # head silence, then speech; the tail is the chapter-end pause
    assert not audio[: int(0.45 * rate)].any() and not audio[-int(0.95 * rate):].any()
    assert seen[0] == (0, result["chunks"], 0) and seen[-1][0] == result["chunks"]
    assert [p[0] for p in seen] == sorted(p[0] for p in seen)
    assert storage.list("book/ch1/.checkpoint") == []


def test_same_seed_same_audio_and_flac(tiny_engine: Engine, tmp_path: Path) -> None:
    a = synthesize_chapter(ChapterJob("b", "c", TEXT, seed=11, format="flac"), tiny_engine,
                           open_storage(str(tmp_path / "a")), OPTIONS)
    b = synthesize_chapter(ChapterJob("b", "c", TEXT, seed=11, format="flac"), tiny_engine,
                           open_storage(str(tmp_path / "b")), OPTIONS)
    assert a["key"] == b["key"] and a["key"].endswith(".flac")
    assert np.array_equal(read(a["uri"])[0], read(b["uri"])[0])


def test_killed_chapter_resumes_from_checkpoint(tiny_engine: Engine, tmp_path: Path) -> None:
    job = ChapterJob("book", "long", TEXT * 3, seed=5)
    reference = synthesize_chapter(job, tiny_engine, open_storage(str(tmp_path / "ref")), OPTIONS)

    storage = open_storage(str(tmp_path / "run"))
    with pytest.raises(Crash):
        synthesize_chapter(job, CrashingEngine(tiny_engine, batches=3), storage, OPTIONS)
    assert any(k.endswith("state.json") for k in storage.list("book/long/.checkpoint/"))

    resumed = synthesize_chapter(job, tiny_engine, storage, OPTIONS)
    assert resumed["resumed_from_chunk"] > 0 and resumed["attempts"] == 2
    # The resumed chapter is sample-for-sample the chapter that was never interrupted.
    assert np.array_equal(read(resumed["uri"])[0], read(reference["uri"])[0])
    assert storage.list("book/long/.checkpoint") == []
    assert [k for k in storage.list("book/long/") if k.endswith(".wav")] == [resumed["key"]]


def test_a_chapter_that_keeps_dying_gives_up(tiny_engine: Engine, tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    job = ChapterJob("b", "c", TEXT)
    options = SynthOptions(**{**OPTIONS.__dict__, "max_attempts": 2})
    for _ in range(2):
        with pytest.raises(Crash):
            synthesize_chapter(job, CrashingEngine(tiny_engine, batches=0), storage, options)
    with pytest.raises(AttemptsExhausted, match="delivered 3 times"):
        synthesize_chapter(job, tiny_engine, storage, options)


def test_a_paused_chapter_continues_without_spending_an_attempt(tiny_engine: Engine, tmp_path: Path) -> None:
    job = ChapterJob("book", "paused", TEXT * 3, seed=5)
    reference = synthesize_chapter(job, tiny_engine, open_storage(str(tmp_path / "ref")), OPTIONS)
    storage = open_storage(str(tmp_path / "run"))
    options = SynthOptions(**{**OPTIONS.__dict__, "max_attempts": 1})

    def pause_after_a_batch(done: int, total: int, resumed_from: int) -> None:
        if resumed_from < done < total:
            raise ChapterPaused("held long enough")

    pauses = 0
    while True:  # one batch per delivery: many more deliveries than max_attempts allows
        try:
            result = synthesize_chapter(job, tiny_engine, storage, options, pause_after_a_batch)
            break
        except ChapterPaused:
            pauses += 1
    assert pauses >= 3 and result["attempts"] == 1 and result["resumed_from_chunk"] > 0
    assert np.array_equal(read(result["uri"])[0], read(reference["uri"])[0])


def test_finished_chapter_is_returned_from_storage(tiny_engine: Engine, tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    job = ChapterJob("b", "c", "Short one. Two.")
    first = synthesize_chapter(job, tiny_engine, storage, OPTIONS)
    again = synthesize_chapter(job, CrashingEngine(tiny_engine, batches=0), storage, OPTIONS)
    assert again["cached"] and not first["cached"] and again["uri"] == first["uri"]


@pytest.mark.parametrize("sizes,max_chars,max_rows,expected", [
    ([10, 10, 10], 30, 8, [(0, 3)]),
    ([10, 10, 10], 20, 8, [(0, 2), (2, 3)]),
    ([50, 5], 20, 8, [(0, 1), (1, 2)]),          # an oversized row still goes alone
    ([3, 3, 3, 3, 3], 100, 2, [(0, 2), (2, 4), (4, 5)]),
])
def test_batches_are_sized_by_characters(sizes: list[int], max_chars: int, max_rows: int,
                                         expected: list[tuple[int, int]]) -> None:
    chunks = chunk_text(" ".join("W" + "o" * (n - 2) + "." for n in sizes), 60)
    assert [len(c.spoken) for c in chunks] == sizes
    assert batches(chunks, max_chars, max_rows) == expected
