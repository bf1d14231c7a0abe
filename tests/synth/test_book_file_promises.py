"""What a listener's book file promises, measured on the file as a player decodes it: the sample peak stays
under the ceiling and the integrated loudness within 1 LU of the target on every run, and it carries its
title, author and cover art."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest

import synth.output.book as book_module
from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.engines import load_engine
from synth.errors import EncodeError
from synth.output import BookOptions, ChapterAudio, read_chapter_marks, write_book
from synth.output.book import retune
from synth.output.ffmpeg import decode_blocks, ffmpeg_exe
from synth.storage.local import LocalStorage

OPTIONS = BookOptions(target_lufs=-20.0, peak_db=-3.0)
TEXTS = ["The lighthouse keeper had counted the ships for 31 years, and on the night of the 3rd of March he "
         "counted one too many. It came in without lights!",
         "\"That's no fishing boat,\" he said to nobody. The radio gave him only static, and the beam swept across "
         "the water every 12 seconds."]


def decoded_measures(path: Path, rate: int = 44100) -> tuple[float, float]:
    """(sample peak in dBFS, integrated loudness in LUFS) of the decoded file, measured here independently."""
    audio = np.concatenate(list(decode_blocks(path, sample_rate=rate))).astype(np.float64)
    return 20 * math.log10(float(np.max(np.abs(audio)))), pyloudnorm.Meter(rate).integrated_loudness(audio)


def image(path: Path, color: str) -> bytes:
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", f"color=c={color}:s=32x32",
                    "-frames:v", "1", "-y", str(path)], check=True)
    return path.read_bytes()


def pictures(path: Path) -> list[bytes]:
    audio = mutagen.File(path)
    if path.suffix == ".m4b":
        return [bytes(p) for p in audio.tags.get("covr", [])]
    if path.suffix == ".mp3":
        return [frame.data for frame in audio.tags.getall("APIC")]
    return [p.data for p in audio.pictures]


def voiced(seconds: float, pitch_hz: float, rate: int = 22050) -> np.ndarray:
    """A buzzing vowel in syllables, peaking about 17 dB over its loudness as speech does, 0.5 s of silence around."""
    t = np.arange(int(seconds * rate)) / rate
    harmonics = sum(np.cos(2 * np.pi * pitch_hz * k * t) / k**1.5 for k in range(1, int(4000 / pitch_hz)))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 1.5
    wave = np.concatenate([np.zeros(rate // 2), harmonics * envelope, np.zeros(rate // 2)])
    return (wave / np.max(np.abs(wave)) * 0.95).astype(np.float32)


@pytest.fixture(scope="module")
def loud_chapters(tmp_path_factory: pytest.TempPathFactory) -> list[ChapterAudio]:
    """Two voiced chapters with peaks near full scale."""
    import soundfile as sf

    directory = tmp_path_factory.mktemp("loud")
    made = []
    for i, pitch in enumerate([110.0, 190.0]):
        path = directory / f"c{i}.flac"
        sf.write(path, voiced(4.0, pitch), 22050, subtype="PCM_16")
        made.append(ChapterAudio(path, f"Part {i + 1}"))
    return made


@pytest.mark.parametrize("fmt,suffix", [("m4b", "jpg"), ("mp3", "png"), ("flac", "jpg")])
def test_title_author_and_cover_art_are_in_the_file(loud_chapters: list[ChapterAudio], tmp_path: Path,
                                                    fmt: str, suffix: str) -> None:
    art = image(tmp_path / f"cover.{suffix}", "red")
    book = write_book(loud_chapters, tmp_path / f"book.{fmt}", fmt, title="The Ship", author="A. N. Example",
                      cover=tmp_path / f"cover.{suffix}", options=OPTIONS)
    tags, marks = read_chapter_marks(book.path)
    assert (tags["title"], tags["artist"]) == ("The Ship", "A. N. Example")
    if fmt != "flac":  # FLAC books carry no chapter marks
        assert [m.title for m in marks] == ["Part 1", "Part 2"]  # the picture stream moves no chapter mark
    assert pictures(book.path) == [art]
    assert mutagen.File(book.path).info.length == pytest.approx(book.duration_s, abs=0.1)


@pytest.mark.parametrize("peak,lufs,expected", [
    (-3.5, -20.2, None),  # both promises kept: no other encode
    (-3.0, -20.5, None),  # at the ceiling and at the tolerance's edge
    (-2.4, -20.0, (2.4, 0.0)),  # 0.6 dB over: that much more headroom, plus the 0.3 dB margin
    (-4.1, -21.1, (1.5, 1.1)),  # the limiter took 1.1 LU: every chapter 1.1 dB louder
    (-2.0, -21.0, (2.8, 1.0)),  # both at once
    (-120.0, float("-inf"), None),  # silence: nothing to fix
])
def test_what_another_encode_changes(peak: float, lufs: float, expected: tuple[float, float] | None) -> None:
    retuned = retune(peak, lufs, OPTIONS, headroom=1.5, extra_gain=0.0)
    assert retuned == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("fmt", ["m4b", "mp3"])
def test_an_overshoot_on_the_decoded_file_is_encoded_again_with_more_headroom(
        loud_chapters: list[ChapterAudio], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """A codec overshooting by more than its allowance: the decoded check catches it and encodes again."""
    content_type, resample, _ = book_module.FORMATS[fmt]
    monkeypatch.setitem(book_module.FORMATS, fmt, (content_type, resample, -1.5))  # overshoots by 1.5 dB more
    options = BookOptions(target_lufs=-20.0, peak_db=-4.5)  # a ceiling these chapters' peaks reach
    book = write_book(loud_chapters, tmp_path / f"book.{fmt}", fmt, options=options)
    peak, lufs = decoded_measures(book.path)
    assert book.encodes >= 2 and peak <= options.peak_db and abs(lufs - options.target_lufs) <= 1.0
    assert book.peak_db == pytest.approx(peak, abs=0.05)

    monkeypatch.setattr(book_module, "MAX_ENCODES", 1)  # without the check the promise would be broken
    with pytest.raises(EncodeError, match="stays over the -4.5 dBFS ceiling"):
        write_book(loud_chapters, tmp_path / f"again.{fmt}", fmt, options=options)


def test_every_run_of_a_real_voice_stays_under_the_ceiling_and_near_the_target(tmp_path: Path) -> None:
    """Piper samples its noise afresh each run (no seed), so each run's peaks differ: three runs, two codecs."""
    voice = load_engine("piper", "cpu")
    storage = LocalStorage(tmp_path / "store")
    measured = []
    for run in range(3):
        chapters = []
        for i, text in enumerate(TEXTS):
            result = synthesize_chapter(ChapterJob(f"run{run}", f"c{i}", text, format="flac"), voice, storage,
                                        SynthOptions())
            chapters.append(ChapterAudio(Path(result["uri"].removeprefix("file://")), f"c{i}"))
        for fmt in ("m4b", "mp3"):
            book = write_book(chapters, tmp_path / f"run{run}.{fmt}", fmt, options=OPTIONS)
            peak, lufs = decoded_measures(book.path)
            measured.append((fmt, round(peak, 2), round(lufs, 2)))
            assert peak <= OPTIONS.peak_db, measured
            assert abs(lufs - OPTIONS.target_lufs) <= 1.0, measured
    assert len({peak for _, peak, _ in measured}) > 1, measured  # the runs really differed
