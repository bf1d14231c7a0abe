"""Seams, pauses and loudness for long-form speech, streamed so memory does not grow with length."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMATS = {"wav": ("WAV", "PCM_16", "audio/wav"), "flac": ("FLAC", "PCM_16", "audio/flac")}
_BLOCK = 1 << 16


def db_to_gain(db: float) -> float:
    return float(10 ** (db / 20))


def trim_silence(wave: np.ndarray, sample_rate: int, threshold_db: float = -45.0, keep_s: float = 0.03) -> np.ndarray:
    """Cut the quiet head and tail of one chunk (relative to its own peak), keeping a little air."""
    if wave.size == 0:
        return wave
    peak = float(np.max(np.abs(wave)))
    if peak == 0.0:
        return wave[:0]
    loud = np.flatnonzero(np.abs(wave) >= peak * db_to_gain(threshold_db))
    keep = int(keep_s * sample_rate)
    return wave[max(0, loud[0] - keep): min(wave.size, loud[-1] + 1 + keep)]


def fade_edges(wave: np.ndarray, sample_rate: int, fade_s: float = 0.01) -> np.ndarray:
    """Raised-cosine fades at both edges so chunk seams never click."""
    n = min(int(fade_s * sample_rate), wave.size // 2)
    if n <= 0:
        return wave
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n, dtype=np.float32))).astype(np.float32)
    out = wave.astype(np.float32, copy=True)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


@dataclass
class LevelStats:
    """Running sample count, energy and peak of everything written (JSON-able for checkpoints)."""

    samples: int = 0
    sum_squares: float = 0.0
    peak: float = 0.0

    def add(self, block: np.ndarray) -> None:
        if block.size:
            self.samples += int(block.size)
            self.sum_squares += float(np.dot(block.astype(np.float64), block.astype(np.float64)))
            self.peak = max(self.peak, float(np.max(np.abs(block))))

    def rms_db(self) -> float:
        if self.samples == 0 or self.sum_squares == 0.0:
            return -math.inf
        return 10 * math.log10(self.sum_squares / self.samples)

    def gain_for(self, target_rms_db: float, peak_db: float) -> float:
        """Gain toward the RMS target, lowered where needed so the peak stays at or under `peak_db`."""
        if self.peak == 0.0:
            return 1.0
        by_rms = db_to_gain(target_rms_db - self.rms_db())
        by_peak = db_to_gain(peak_db) / self.peak
        return min(by_rms, by_peak)


def finalize(raw: Path, target: Path, fmt: str, gain: float) -> int:
    """Stream the float32 working file into the delivery format with one gain; returns the sample count."""
    import soundfile as sf  # here, so the seam functions import without it (bench/gpu_check.py)

    container, subtype, _ = FORMATS[fmt]
    written = 0
    with sf.SoundFile(raw) as src, sf.SoundFile(target, "w", samplerate=src.samplerate, channels=1,
                                               format=container, subtype=subtype) as dst:
        for block in src.blocks(blocksize=_BLOCK, dtype="float32"):
            dst.write(np.clip(block * gain, -1.0, 1.0))
            written += len(block)
    return written
