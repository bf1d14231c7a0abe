"""Seams and loudness helpers, from tables of synthetic signals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.audio import LevelStats, fade_edges, finalize, silence, trim_silence

SR = 16000


def tone(seconds: float, amplitude: float = 0.5, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR), dtype=np.float32) / SR
    return (amplitude * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def test_trim_cuts_quiet_edges_but_keeps_air() -> None:
    wave = np.concatenate([np.zeros(SR // 2, np.float32), tone(1.0), np.zeros(SR, np.float32)])
    trimmed = trim_silence(wave, SR, keep_s=0.03)
    assert abs(len(trimmed) - (SR + 2 * int(0.03 * SR))) <= 2
    assert trim_silence(np.zeros(100, np.float32), SR).size == 0


def test_fades_start_and_end_at_zero() -> None:
    faded = fade_edges(np.ones(SR, np.float32), SR, fade_s=0.01)
    assert faded[0] == pytest.approx(0.0, abs=1e-6) and faded[-1] == pytest.approx(0.0, abs=1e-6)
    assert faded[SR // 2] == 1.0
    assert np.all(np.diff(faded[: int(0.01 * SR)]) >= 0)  # monotone ramp, no step (click)


def test_silence_length() -> None:
    assert silence(0.4, SR).shape == (6400,) and not silence(0.4, SR).any()


@pytest.mark.parametrize("amplitude,target_rms,peak_db", [
    (0.05, -20.0, -3.0),   # quiet speech is raised to the RMS target
    (0.9, -20.0, -3.0),    # loud speech is lowered
    (0.5, -6.0, -3.0),     # a target that would clip: the peak ceiling wins
])
def test_gain_meets_rms_target_or_peak_ceiling(amplitude: float, target_rms: float, peak_db: float) -> None:
    stats = LevelStats()
    stats.add(tone(1.0, amplitude))
    gain = stats.gain_for(target_rms, peak_db)
    out_rms = stats.rms_db() + 20 * math.log10(gain)
    out_peak = 20 * math.log10(stats.peak * gain)
    assert out_peak <= peak_db + 1e-6
    assert out_rms == pytest.approx(target_rms, abs=0.01) or out_peak == pytest.approx(peak_db, abs=0.01)


def test_finalize_streams_with_one_gain(tmp_path: Path) -> None:
    raw = tmp_path / "raw.wav"
    sf.write(raw, np.concatenate([tone(2.0, 0.1), tone(2.0, 0.2)]), SR, subtype="FLOAT")
    out = tmp_path / "out.flac"
    assert finalize(raw, out, "flac", 2.0) == 4 * SR
    data, rate = sf.read(out)
    assert rate == SR and np.max(np.abs(data)) == pytest.approx(0.4, abs=1e-3)
