"""The chapter pipeline in-process on the tiny random VITS: output shape, determinism, resume, caching."""

from __future__ import annotations

import itertools
import json
import math
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.batching import runs
from synth.chapter import AttemptsExhausted, ChapterJob, SynthOptions, plan, synthesize_chapter
from synth.engines.base import Engine
from synth.errors import ChapterPaused, StorageError
from synth.storage import open_storage
from synth.storage.local import LocalStorage
from synth.text.chunk import chunk_text
from synth.text.normalize import normalize
from tests.support.processes import ROOT, wait_for

TEXT = ("Chapter 1. It was 1984, and Dr. Smith paid $5.50 for the paper. "
        "The rain kept falling; nobody noticed.\n\n"
        "A second paragraph starts here! Does it end? It does.\n\n"
        "Third paragraph, with “quotes” and an em—dash, then the end.")
# Small batches and windows of two batches: a chapter of many windows; checkpoints only when a test asks.
OPTIONS = SynthOptions(max_chunk_chars=40, max_batch_chars=80, max_batch_size=2, window_batches=2, head_s=0.5,
                       tail_s=1.0, checkpoint_s=1e9)
LONG = ChapterJob("book", "long", TEXT * 2, seed=5)  # 21 chunks, 11 batches in 6 windows


def with_options(**changes: object) -> SynthOptions:
    return SynthOptions(**{**OPTIONS.__dict__, **changes})


@pytest.fixture(scope="module")
def reference(tiny_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, np.ndarray]:
    """LONG synthesized once, uninterrupted, checkpointed only at the end: what every resume must equal."""
    result = synthesize_chapter(LONG, tiny_engine, open_storage(str(tmp_path_factory.mktemp("reference"))),
                                OPTIONS)
    return result, read(result["uri"])[0]


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


def ticking_clock():  # noqa: ANN201
    """A clock that moves one second each time it is read: checkpoints land on the same windows every run."""
    ticks = itertools.count()
    return lambda: float(next(ticks))


def state_json(storage: LocalStorage, book: str, chapter: str) -> dict | None:
    keys = [k for k in storage.list(f"{book}/{chapter}/.checkpoint/") if k.endswith("state.json")]
    return storage.get_json(keys[0]) if keys else None


def windows_of(engine: Engine, text: str, options: SynthOptions):  # noqa: ANN201 - list[Window]
    chunks = chunk_text(normalize(text), options.max_chunk_chars)
    return plan([engine.speakable(c.spoken) for c in chunks], options)


def test_checkpoints_follow_the_clock_not_the_batches(tiny_engine: Engine, reference: tuple[dict, np.ndarray],
                                                      tmp_path: Path) -> None:
    windows = windows_of(tiny_engine, LONG.text, OPTIONS)
    assert len(windows) == 6 and reference[0]["checkpoints"] == 1  # only at the end
    # The ticking clock reads 0 at the start, then one more on each window and each save: with 2.5 s
    # between checkpoints, every third window is saved (the last one always is).
    timed = synthesize_chapter(LONG, tiny_engine, open_storage(str(tmp_path / "a")), with_options(checkpoint_s=2.5),
                               clock=ticking_clock())
    assert timed["checkpoints"] == 2
    every = synthesize_chapter(LONG, tiny_engine, open_storage(str(tmp_path / "b")), with_options(checkpoint_s=0))
    assert every["checkpoints"] == len(windows)
    # How often a chapter checkpoints is part of neither its identity nor its audio.
    assert timed["key"] == every["key"] == reference[0]["key"]
    assert np.array_equal(read(timed["uri"])[0], reference[1])
    assert np.array_equal(read(every["uri"])[0], reference[1])


def test_killed_chapter_resumes_from_checkpoint(tiny_engine: Engine, reference: tuple[dict, np.ndarray],
                                                tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    with pytest.raises(Crash):
        synthesize_chapter(LONG, CrashingEngine(tiny_engine, batches=9), storage, with_options(checkpoint_s=2.5),
                           clock=ticking_clock())
    # Besides the checkpoints the clock asked for, the audio already made when the engine failed was
    # written and saved: the run stopped at the end of the last window whose batches all came back.
    state = state_json(storage, "book", "long")
    windows = windows_of(tiny_engine, LONG.text, OPTIONS)
    passes = list(itertools.accumulate(len(w.batches) for w in windows))
    complete = [w.end for w, n in zip(windows, passes, strict=True) if n <= 9]
    assert state is not None and state["next_chunk"] == complete[-1] > 0
    assert len(complete) == 4 and len(state["parts"]) == 2  # window 3 by the clock, window 4 at the failure

    # Resumed with another checkpoint interval: the same windows, the same audio.
    resumed = synthesize_chapter(LONG, tiny_engine, storage, with_options(checkpoint_s=0))
    assert resumed["resumed_from_chunk"] == complete[-1] and resumed["attempts"] == 2
    # The resumed chapter is sample-for-sample the chapter that was never interrupted.
    assert np.array_equal(read(resumed["uri"])[0], reference[1])
    assert storage.list("book/long/.checkpoint") == []
    assert [k for k in storage.list("book/long/") if k.endswith(".wav")] == [resumed["key"]]


# A chapter run in its own process, a little slowed down per pass so the test can kill it mid-chapter.
KILLED_RUN = """
import json, sys, time
from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.engines import load_engine
from synth.storage import open_storage
model, root, text, options = sys.argv[1:5]
engine = load_engine(model, "cpu")
synthesize = engine.synthesize
engine.synthesize = lambda *a, **k: (time.sleep(0.3), synthesize(*a, **k))[1]
synthesize_chapter(ChapterJob("book", "long", text, seed=5), engine, open_storage(root),
                   SynthOptions(**json.loads(options)))
"""


def test_a_process_killed_mid_chapter_resumes_sample_identical(tiny_engine: Engine, tiny_model_dir: Path,
                                                                reference: tuple[dict, np.ndarray],
                                                                tmp_path: Path) -> None:
    """SIGKILL leaves no time to save anything: the resume starts from the last checkpoint the clock cut."""
    storage = LocalStorage(tmp_path)
    options = json.dumps(with_options(checkpoint_s=0).__dict__)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tiny_model_dir), str(storage.root), LONG.text,
                             options], cwd=ROOT)
    try:
        state = wait_for(lambda: (s := state_json(storage, "book", "long")) and s["next_chunk"] > 0 and s,
                         120, what="a first checkpoint")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert state["next_chunk"] < len(chunk_text(normalize(LONG.text), OPTIONS.max_chunk_chars))
    resumed = synthesize_chapter(LONG, tiny_engine, storage, OPTIONS)
    assert resumed["resumed_from_chunk"] >= state["next_chunk"] > 0 and resumed["attempts"] == 2
    assert np.array_equal(read(resumed["uri"])[0], reference[1])


class FailingStorage(LocalStorage):
    """Real local storage whose uploads of checkpoint parts fail, as a full bucket or lost network would."""

    def put_file(self, key: str, source: Path, content_type: str = "application/octet-stream") -> str:
        if "/part-" in key:
            raise StorageError("S3 upload failed: simulated")
        return super().put_file(key, source, content_type)


class BadWaves(Engine):
    """Wraps a real engine but hands back no arrays, so the post stage fails on its first row."""

    def __init__(self, inner: Engine) -> None:
        self.inner, self.name, self.sample_rate = inner, inner.name, inner.sample_rate

    def speakable(self, text: str) -> str:
        return self.inner.speakable(text)

    def voices(self) -> list[str]:
        return self.inner.voices()

    def synthesize(self, texts, *, voice=None, seed=None):  # noqa: ANN001, ANN201
        return [None for _ in texts]


def test_pipeline_errors_reach_the_caller_and_leave_no_thread(tiny_engine: Engine, tmp_path: Path) -> None:
    job = ChapterJob("book", "fails", TEXT, seed=5)
    every = with_options(checkpoint_s=0)
    with pytest.raises(StorageError, match="simulated"):
        synthesize_chapter(job, tiny_engine, FailingStorage(tmp_path / "a"), every)
    with pytest.raises(AttributeError):
        synthesize_chapter(job, BadWaves(tiny_engine), LocalStorage(tmp_path / "b"), every)
    assert state_json(LocalStorage(tmp_path / "b"), "book", "fails") is None  # nothing half-made was saved
    assert [t.name for t in threading.enumerate() if t.name.startswith("chapter-")] == []
    # The storage failed, the chapter did not: once uploads work again it completes.
    assert synthesize_chapter(job, tiny_engine, LocalStorage(tmp_path / "a"), every)["attempts"] == 2


def test_a_chapter_that_keeps_dying_gives_up(tiny_engine: Engine, tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path))
    job = ChapterJob("b", "c", TEXT)
    options = with_options(max_attempts=2)
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
    assert runs([len(c.spoken) for c in chunks], max_chars, max_rows) == expected


def test_storage_requests_follow_time_not_sentences(tiny_engine: Engine, s3_endpoint: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a loopback S3, counted at boto3: a chapter inside one checkpoint interval costs the same
    ten requests however many sentences it has; checkpoints per window cost a part and a state.json each."""
    import uuid

    import boto3

    from synth.storage.s3 import S3Storage

    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"requests-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)

    def requests(job: ChapterJob, options: SynthOptions) -> tuple[int, dict]:
        storage = S3Storage(bucket, "books")
        sent: list[str] = []
        storage.client.meta.events.register("before-send.s3", lambda event_name, **_: sent.append(event_name))
        result = synthesize_chapter(job, tiny_engine, storage, options)
        return len(sent), result

    short, _ = requests(ChapterJob("book", "short", "Short one. Two.", seed=5), OPTIONS)
    long, result = requests(LONG, OPTIONS)
    # done? attempts (get, put), state, final part + state.json, the chapter, its result, clear (list, delete)
    assert short == long == 10 and result["checkpoints"] == 1 and result["chunks"] == 21
    every, result = requests(ChapterJob("book", "every", TEXT, seed=5), with_options(checkpoint_s=0))
    assert result["checkpoints"] == 3 and every == 10 + 2 * (3 - 1)
