"""One chapter, end to end: normalise, chunk, batch through the engine, stitch, level, store.

The model runs in the calling thread while the audio before it is post-processed, written and uploaded
beside it (synth.render, synth.pipeline). Progress is checkpointed to storage at most every
`checkpoint_s` of work and at the end, and the working audio streams to disk, so a killed chapter resumes
where it was last saved and memory stays flat however long the chapter is.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from synth.audio import FORMATS, finalize
from synth.batching import WINDOW_BATCHES, Window, plan_windows
from synth.checkpoint import ChapterState, Checkpoint, CheckpointWriter
from synth.engines.base import Engine
from synth.errors import ChapterPaused, CheckpointError, SynthError
from synth.pipeline import Stage
from synth.render import WindowAssembler, render
from synth.storage import Storage
from synth.text.chunk import Chunk, chunk_text, sentence_count
from synth.text.normalize import normalize

if TYPE_CHECKING:
    from settings import Settings

# (chunks through the model so far, total chunks, chunk the run resumed from): called after every batch
Progress = Callable[[int, int, int], None]

PEAK_MARGIN_DB = 0.05  # 16-bit rounding must not push the peak over the ceiling
# Options that change how a chapter runs, not its audio: left out of the content key.
_NOT_IN_AUDIO = {"max_attempts": None, "checkpoint_s": None}


class AttemptsExhausted(SynthError):
    """The chapter was delivered more often than allowed; it keeps killing its worker."""


@dataclass(frozen=True)
class ChapterJob:
    book_id: str
    chapter_id: str
    text: str
    voice: str | None = None
    format: str = "wav"
    title: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class SynthOptions:
    """Tuning of one chapter run; the task shell builds it from Settings."""

    max_chunk_chars: int = 300
    max_batch_chars: int = 2400
    max_batch_size: int = 32
    window_batches: int = WINDOW_BATCHES
    target_rms_db: float = -20.0
    peak_db: float = -3.0
    sentence_pause_s: float = 0.4
    paragraph_pause_s: float = 0.9
    clause_pause_s: float = 0.15
    head_s: float = 0.75
    tail_s: float = 2.0
    max_attempts: int = 3
    checkpoint_s: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings, engine: Engine | None = None) -> SynthOptions:
        """The options the settings ask for; rows per pass default to the engine's own preference."""
        rows = s.max_batch_size or (engine.batch_rows if engine is not None else 1)
        return cls(max_chunk_chars=s.max_chunk_chars, max_batch_chars=s.max_batch_chars, max_batch_size=rows,
                   target_rms_db=s.target_rms_db, peak_db=s.peak_db, sentence_pause_s=s.sentence_pause_s,
                   paragraph_pause_s=s.paragraph_pause_s, head_s=s.chapter_head_s, tail_s=s.chapter_tail_s,
                   max_attempts=s.max_attempts, checkpoint_s=s.checkpoint_seconds)


def content_key(job: ChapterJob, normalized: str, engine: Engine, options: SynthOptions) -> str:
    """`book/chapter/<hash>`: the same input always lands on the same key, so redelivery overwrites."""
    identity = json.dumps({"text": normalized, "voice": job.voice, "model": engine.name, "format": job.format,
                           "seed": job.seed, "options": asdict(options) | _NOT_IN_AUDIO},
                          sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
    return f"{job.book_id}/{job.chapter_id}/{digest}"


def pauses_after(chunks: Sequence[Chunk], options: SynthOptions) -> list[float]:
    """Seconds of silence after each chunk: clause, sentence or paragraph pause, and the tail after the last."""
    def pause(chunk: Chunk) -> float:
        if chunk.paragraph_end:
            return options.paragraph_pause_s
        return options.sentence_pause_s if chunk.sentence_end else options.clause_pause_s

    return [pause(chunk) for chunk in chunks[:-1]] + [options.tail_s] if chunks else []


def plan(speakable: Sequence[str], options: SynthOptions) -> list[Window]:
    """The chapter's windows and batches, sized by the characters the model reads."""
    return plan_windows([len(text) for text in speakable], options.max_batch_chars, options.max_batch_size,
                        options.window_batches)


def _pausable(on_progress: Progress | None, checkpoint: Checkpoint) -> Progress | None:
    """The hook may raise ChapterPaused (it is called after every batch; the run stops at the end of that
    window and checkpoints it): the delivery then does not count as an attempt, so a chapter split into
    several deliveries on purpose never exhausts its attempts."""
    if on_progress is None:
        return None

    def report(done: int, total: int, resumed_from: int) -> None:
        try:
            on_progress(done, total, resumed_from)
        except ChapterPaused:
            checkpoint.forget_attempt()
            raise

    return report


def synthesize_chapter(job: ChapterJob, engine: Engine, storage: Storage, options: SynthOptions,
                       on_progress: Progress | None = None,
                       clock: Callable[[], float] = time.monotonic) -> dict:
    """Synthesize `job` into storage and return the result fields (uri, durations, counts).

    `clock` times checkpoints (every `options.checkpoint_s` of it); tests pass their own.
    """
    started = time.perf_counter()
    normalized = normalize(job.text)
    chunks = chunk_text(normalized, options.max_chunk_chars)
    # Map every chunk to the model's vocabulary before any GPU work: unspeakable text fails fast.
    speakable = [engine.speakable(c.spoken) for c in chunks]
    base = content_key(job, normalized, engine, options)
    key = f"{base}.{job.format}"
    summary = {"characters": len(job.text), "sentences": sentence_count(chunks), "chunks": len(chunks),
               "model": engine.name, "voice": engine.resolve_voice(job.voice), "key": key}

    done = storage.get_json(base + ".json")
    if done is not None and storage.exists(key):
        return done | {"cached": True}

    checkpoint = Checkpoint(storage, f"{job.book_id}/{job.chapter_id}/.checkpoint/{base.rsplit('/', 1)[1]}")
    attempts = checkpoint.record_attempt()
    if attempts > options.max_attempts:
        checkpoint.clear()
        raise AttemptsExhausted(f"chapter {job.book_id}/{job.chapter_id} was delivered {attempts} times "
                                f"(AUDIOBOOK_MAX_ATTEMPTS={options.max_attempts}); giving up")
    on_progress = _pausable(on_progress, checkpoint)
    state = checkpoint.load(len(chunks)) or ChapterState(chunks_total=len(chunks))
    resumed_from = state.next_chunk
    windows = plan(speakable, options)
    todo = [window for window in windows if window.start >= resumed_from]
    if resumed_from != (todo[0].start if todo else len(chunks)):
        raise CheckpointError(f"checkpoint of {job.book_id}/{job.chapter_id} ends inside a window")
    sample_rate = engine.sample_rate

    paused: list[ChapterPaused] = []

    def progress(rows: int) -> None:
        # A pause asked for mid-window takes effect when the window is done, so every delivery saves progress.
        if on_progress and not paused:
            try:
                on_progress(resumed_from + rows, len(chunks), resumed_from)
            except ChapterPaused as exc:
                paused.append(exc)

    with tempfile.TemporaryDirectory(prefix="chapter-") as tmp:
        work = Path(tmp)
        raw = work / "chapter.raw.wav"
        with sf.SoundFile(raw, "w", samplerate=sample_rate, channels=1, format="WAV", subtype="FLOAT") as out:
            for part in checkpoint.fetch_parts(state, work):
                for block in sf.blocks(part, blocksize=1 << 16, dtype="float32"):
                    out.write(block)
                part.unlink()
            progress(0)
            # The model runs here; post-processing and file writes on `post`, storage requests on `uploads`.
            # A run stopped by an error (not the writer's) still writes what the model made and checkpoints it.
            with Stage("chapter-upload", backlog=2, finish_on_error=True) as uploads:
                writer = CheckpointWriter(checkpoint, state, out, work, uploads, options.checkpoint_s, clock)
                assembler = WindowAssembler(sample_rate, pauses_after(chunks, options), options.head_s,
                                            writer.write)
                post = Stage("chapter-post", backlog=options.window_batches, finish_on_error=True)
                try:
                    with post:
                        rendered = render(engine, speakable, todo, post, assembler, voice=job.voice,
                                          seed=job.seed, on_batch=progress, stop=lambda: bool(paused))
                finally:
                    if not post.failed:
                        writer.close()
        if paused:
            raise paused[0]  # after the checkpoint of what was made is in storage

        gain = state.stats.gain_for(options.target_rms_db, options.peak_db - PEAK_MARGIN_DB)
        final = work / f"chapter.{job.format}"
        samples = finalize(raw, final, job.format, gain)
        uri = storage.put_file(key, final, FORMATS[job.format][2])

    peak_db = 20 * np.log10(state.stats.peak * gain) if state.stats.peak else None
    result = summary | {
        "uri": uri, "format": job.format, "sample_rate": sample_rate, "samples": samples,
        "duration_s": round(samples / sample_rate, 3), "synth_seconds": round(time.perf_counter() - started, 3),
        "model_seconds": round(rendered.model_s, 3), "checkpoints": writer.saves,
        "resumed_from_chunk": resumed_from, "attempts": attempts,
        "rms_db": round(state.stats.rms_db() + 20 * np.log10(gain), 2) if state.stats.peak else None,
        "peak_db": None if peak_db is None else round(float(peak_db), 2), "cached": False,
    }
    storage.put_json(base + ".json", result)
    checkpoint.clear()
    return result
