"""A short text rendered to one levelled clip in memory (previews), with the chapter path's seams and pauses.

A chapter streams to disk and checkpoints; a clip of seconds needs neither, so it runs the chapter's
batching and model loop (synth.render) into memory and levels the whole clip at once.
"""

from __future__ import annotations

import io
import math

import numpy as np
import soundfile as sf

from synth.audio import FORMATS, LevelStats
from synth.chapter import PEAK_MARGIN_DB, SynthOptions, pauses_after, plan
from synth.engines.base import Engine
from synth.pipeline import Stage
from synth.render import WindowAssembler, render
from synth.text.chunk import chunk_text

# Previews must start at once: far shorter room tone than a chapter's head and tail.
CLIP_HEAD_S = 0.1
CLIP_TAIL_S = 0.3
_END_FADE_S = 0.05


def render_clip(engine: Engine, normalized: str, options: SynthOptions, *, voice: str | None = None,
                seed: int | None = None, max_seconds: float | None = None) -> np.ndarray:
    """Speak `normalized` (already normalised text) as one float32 clip at the chapter loudness target.

    Audio beyond `max_seconds` is cut off with a short fade: the caller's text budget is an estimate,
    this is the hard limit.
    """
    chunks = chunk_text(normalized, options.max_chunk_chars)
    speakable = [engine.speakable(chunk.spoken) for chunk in chunks]
    parts: list[np.ndarray] = []
    assembler = WindowAssembler(engine.sample_rate, pauses_after(chunks, options), options.head_s,
                                lambda _window, blocks: parts.extend(blocks))
    with Stage("clip-post", backlog=options.window_batches) as post:
        render(engine, speakable, plan(speakable, options), post, assembler, voice=voice, seed=seed)
    clip = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if max_seconds is not None and clip.size > int(max_seconds * engine.sample_rate):
        clip = _fade_out(clip[: int(max_seconds * engine.sample_rate)], engine.sample_rate)
    stats = LevelStats()
    stats.add(clip)
    gain = stats.gain_for(options.target_rms_db, options.peak_db - PEAK_MARGIN_DB)
    return np.clip(clip * gain, -1.0, 1.0).astype(np.float32)


def _fade_out(clip: np.ndarray, sample_rate: int) -> np.ndarray:
    n = min(int(_END_FADE_S * sample_rate), clip.size)
    out = clip.astype(np.float32, copy=True)
    if n:
        out[-n:] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, math.pi, n, dtype=np.float32))).astype(np.float32)
    return out


def encode(clip: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """The clip as a complete `wav` or `flac` file in memory (16-bit PCM, like chapters)."""
    container, subtype, _ = FORMATS[fmt]
    buffer = io.BytesIO()
    sf.write(buffer, clip, sample_rate, format=container, subtype=subtype)
    return buffer.getvalue()

