"""ITU-R BS.1770 integrated loudness, measured block by block so a chapter never sits in memory whole.

The K-weighting filter coefficients come from pyloudnorm; this module only keeps the filter state between
blocks and gates 400 ms blocks (75 % overlap, built from 100 ms hops) as BS.1770-4 does, so the result
matches `pyloudnorm.Meter.integrated_loudness` on the same signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
HOPS_PER_BLOCK = 4  # 400 ms gating blocks moved in 100 ms steps
READ_BLOCK = 1 << 16


@dataclass(frozen=True)
class Loudness:
    """One signal's integrated loudness (-inf when silent or shorter than a gating block) and sample peak."""

    lufs: float
    peak_db: float
    samples: int
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return self.samples / self.sample_rate


class LoudnessMeter:
    """Feed mono float blocks with `add`, then read `result()`."""

    def __init__(self, sample_rate: int) -> None:
        import pyloudnorm  # with scipy: imported here, so control-plane processes start light
        from scipy.signal import lfilter

        self._lfilter = lfilter
        self.sample_rate = sample_rate
        self.stages = [(f.b, f.a, f.passband_gain) for f in pyloudnorm.Meter(sample_rate)._filters.values()]
        self.states = [np.zeros(max(len(b), len(a)) - 1) for b, a, _ in self.stages]
        self.hop = int(round(0.1 * sample_rate))
        self.pending = np.zeros(0)
        self.hop_energy: list[float] = []
        self.samples = 0
        self.peak = 0.0

    def add(self, block: np.ndarray) -> None:
        if block.size == 0:
            return
        block = np.asarray(block, dtype=np.float64)
        self.samples += block.size
        self.peak = max(self.peak, float(np.max(np.abs(block))))
        for i, (b, a, gain) in enumerate(self.stages):
            block, self.states[i] = self._lfilter(b, a, block, zi=self.states[i])
            block = gain * block
        filtered = np.concatenate([self.pending, block])
        whole = filtered.size // self.hop * self.hop
        if whole:
            self.hop_energy.extend(np.square(filtered[:whole]).reshape(-1, self.hop).sum(axis=1).tolist())
        self.pending = filtered[whole:]

    def result(self) -> Loudness:
        peak_db = 20 * math.log10(self.peak) if self.peak > 0 else -math.inf
        return Loudness(lufs=self._gated(), peak_db=peak_db, samples=self.samples, sample_rate=self.sample_rate)

    def _gated(self) -> float:
        hops = np.asarray(self.hop_energy)
        if hops.size < HOPS_PER_BLOCK:
            return -math.inf
        window = np.lib.stride_tricks.sliding_window_view(hops, HOPS_PER_BLOCK)
        power = window.sum(axis=1) / (HOPS_PER_BLOCK * self.hop)
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10 * np.log10(power)
        above_absolute = power[loudness >= ABSOLUTE_GATE_LUFS]
        if above_absolute.size == 0:
            return -math.inf
        relative_gate = -0.691 + 10 * math.log10(float(above_absolute.mean())) + RELATIVE_GATE_LU
        gated = power[(loudness > relative_gate) & (loudness > ABSOLUTE_GATE_LUFS)]
        return -0.691 + 10 * math.log10(float(gated.mean())) if gated.size else -math.inf


def mono_blocks(path: Path, blocksize: int = READ_BLOCK):  # noqa: ANN201 - a generator of float32 arrays
    """Decoded float32 mono blocks of an audio file (channels averaged)."""
    with sf.SoundFile(path) as audio:
        for block in audio.blocks(blocksize=blocksize, dtype="float32", always_2d=True):
            yield block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)


def measure_file(path: Path) -> Loudness:
    """Loudness of an audio file, read in blocks (memory stays flat however long it is)."""
    meter = LoudnessMeter(sf.info(str(path)).samplerate)
    for block in mono_blocks(path):
        meter.add(block)
    return meter.result()


def matching_gains(measured: Sequence[Loudness], target_lufs: float, max_gain_db: float = 30.0) -> list[float]:
    """Gain in dB per chapter that brings each to `target_lufs`; silent chapters get 0, boosts are capped.

    Peaks are not considered here: the encoder's limiter holds them under the ceiling, which changes the
    measured loudness by far less than 1 LU for speech.
    """
    return [0.0 if not math.isfinite(m.lufs) else min(max_gain_db, target_lufs - m.lufs) for m in measured]
