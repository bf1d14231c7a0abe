"""Book files: M4B chapter marks read back, MP3 rate and bitrate, loudness matching, peaks, flat memory."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from synth.errors import EncodeError, StorageError
from synth.output import BookOptions, ChapterAudio, assemble_book_file, read_chapter_marks, write_book
from synth.output.book import chapter_marks, measure_chapters
from synth.output.ffmpeg import ChapterMark, decode_blocks, ffmetadata, parse_ffmetadata
from synth.output.loudness import LoudnessMeter, measure_file
from synth.storage.local import LocalStorage

RATE = 22050


def speech_like(seconds: float, level_db: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Noise in ~4 Hz syllable bursts between 0.75 s of silence before and 1 s after, like a chapter file."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = np.clip(np.sin(2 * np.pi * (3.5 + seed % 3 * 0.4) * t), 0, None) ** 2
    voiced = rng.standard_normal(t.size) * envelope * 0.3 + 0.2 * np.sin(2 * np.pi * 140 * t) * envelope
    wave = np.concatenate([np.zeros(int(0.75 * rate)), voiced, np.zeros(rate)])
    return (wave * 10 ** (level_db / 20) / np.max(np.abs(wave)) * 0.9).astype(np.float32)


@pytest.fixture(scope="module")
def chapters(tmp_path_factory: pytest.TempPathFactory) -> list[ChapterAudio]:
    """Three chapters at very different levels (peaks at -1, -15 and -8 dB), different lengths."""
    directory = tmp_path_factory.mktemp("chapters")
    made = []
    for i, (seconds, level) in enumerate([(4.0, -1.0), (6.5, -15.0), (3.2, -8.0)], start=1):
        path = directory / f"c{i}.flac"
        sf.write(path, speech_like(seconds, level, seed=i), RATE, subtype="PCM_16")
        made.append(ChapterAudio(path, f"Chapter {i}: the {['start', 'middle', 'end'][i - 1]}"))
    return made


def offsets_ms(chapters: list[ChapterAudio]) -> list[tuple[int, int]]:
    """What the manifest says: start = sum of earlier durations from sample counts, in ms."""
    starts, done = [], 0.0
    for chapter in chapters:
        duration = sf.info(str(chapter.path)).frames / RATE
        starts.append((round(done * 1000), round((done + duration) * 1000)))
        done += duration
    return starts


def decoded(path: Path) -> np.ndarray:
    return np.concatenate(list(decode_blocks(path)))


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_streaming_meter_matches_pyloudnorm(rate: int) -> None:
    wave = speech_like(5.0, -6.0, seed=rate, rate=rate)
    meter = LoudnessMeter(rate)
    for start in range(0, wave.size, 3001):  # odd block size: filter state and hop remainders carry over
        meter.add(wave[start:start + 3001])
    result = meter.result()
    assert result.lufs == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(wave.astype(np.float64)),
                                        abs=1e-6)
    assert result.samples == wave.size and result.peak_db == pytest.approx(-6.0 + 20 * math.log10(0.9), abs=1e-3)


def test_silence_measures_minus_infinity(tmp_path: Path) -> None:
    sf.write(tmp_path / "quiet.wav", np.zeros(RATE * 2, dtype=np.float32), RATE)
    assert measure_file(tmp_path / "quiet.wav").lufs == -math.inf


def test_m4b_chapter_marks_and_tags_read_back(chapters: list[ChapterAudio], tmp_path: Path) -> None:
    book = write_book(chapters, tmp_path / "book.m4b", "m4b", title="The Book", author="Ann Author")

    tags, marks = read_chapter_marks(book.path)
    assert [m.title for m in marks] == [c.title for c in chapters]
    for mark, (start, end) in zip(marks, offsets_ms(chapters), strict=True):
        assert abs(mark.start_ms - start) <= 10 and abs(mark.end_ms - end) <= 10
    assert [(c.start_ms, c.end_ms) for c in book.chapters] == [(m.start_ms, m.end_ms) for m in marks]
    assert (tags["title"], tags["artist"], tags["album"]) == ("The Book", "Ann Author", "The Book")
    mp4 = mutagen.File(book.path)
    assert type(mp4).__name__ == "MP4" and mp4.info.codec == "mp4a.40.2" and mp4.info.sample_rate == 44100
    assert [round(c.start * 1000) for c in mp4.chapters] == [m.start_ms for m in marks]
    assert book.duration_s == pytest.approx(offsets_ms(chapters)[-1][1] / 1000, abs=1e-3)
    assert mp4.info.length == pytest.approx(book.duration_s, abs=0.1)


def test_mp3_is_44k1_at_192_kbps_constant(chapters: list[ChapterAudio], tmp_path: Path) -> None:
    book = write_book(chapters, tmp_path / "book.mp3", "mp3", title="The Book")
    info = mutagen.File(book.path).info
    # mutagen derives the rate from the Info header's byte and frame counts: 192 kbit/s give or take 1 bit/s.
    assert (round(info.bitrate, -3), info.sample_rate, info.channels) == (192_000, 44100, 1)
    assert info.bitrate_mode == mutagen.mp3.BitrateMode.CBR
    assert sf.info(str(book.path)).samplerate == 44100
    audio = decoded(book.path)
    assert audio.size / 44100 == pytest.approx(book.duration_s, abs=0.06)
    assert [m.title for m in read_chapter_marks(book.path)[1]] == [c.title for c in chapters]  # ID3 CHAP


def test_one_chapter_mp3(chapters: list[ChapterAudio], tmp_path: Path) -> None:
    book = write_book(chapters[1:2], tmp_path / "chapter.mp3", "mp3")
    assert round(mutagen.File(book.path).info.bitrate, -3) == 192_000
    assert book.duration_s == pytest.approx(sf.info(str(chapters[1].path)).duration, abs=1e-3)


@pytest.mark.parametrize("fmt", ["flac", "mp3", "m4b"])
def test_chapters_match_in_loudness_and_peaks_stay_under_the_ceiling(chapters: list[ChapterAudio],
                                                                     tmp_path: Path, fmt: str) -> None:
    before = [m.lufs for m in measure_chapters(chapters)]
    assert max(before) - min(before) > 10  # the input really is uneven
    options = BookOptions(target_lufs=-20.0, peak_db=-3.0)
    book = write_book(chapters, tmp_path / f"book.{fmt}", fmt, options=options)

    rate = 44100 if fmt != "flac" else RATE
    audio = decoded(book.path)
    meter = pyloudnorm.Meter(rate)
    after = [meter.integrated_loudness(audio[c.start_ms * rate // 1000:c.end_ms * rate // 1000].astype(np.float64))
             for c in book.chapters]
    assert max(after) - min(after) <= 1.0, after
    assert all(abs(lufs - options.target_lufs) <= 1.5 for lufs in after), after
    assert 20 * math.log10(float(np.max(np.abs(audio)))) <= -3.0
    assert [c.gain_db for c in book.chapters] == pytest.approx([-20.0 - lufs + book.correction_db
                                                                for lufs in before], abs=0.02)


def test_flac_book_keeps_the_model_rate(chapters: list[ChapterAudio], tmp_path: Path) -> None:
    book = write_book(chapters, tmp_path / "book.flac", "flac")
    info = sf.info(str(book.path))
    assert (info.samplerate, info.subtype) == (RATE, "PCM_16")
    assert info.frames == sum(sf.info(str(c.path)).frames for c in chapters)


def test_memory_stays_flat_however_long_the_book(tmp_path: Path) -> None:
    long = tmp_path / "long.flac"
    sf.write(long, np.tile(speech_like(10.0, -6.0, seed=1), 12), RATE, subtype="PCM_16")  # 2 minutes
    chapters = [ChapterAudio(long, "One"), ChapterAudio(long, "Two")]
    decoded_bytes = 2 * sf.info(str(long)).frames * 4  # the book as float32
    tracemalloc.start()
    try:
        write_book(chapters, tmp_path / "book.flac", "flac")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < decoded_bytes / 8, (peak, decoded_bytes)


@pytest.mark.parametrize("marks,tags", [
    ([ChapterMark("Plain", 0, 1500)], {"title": "Book"}),
    ([ChapterMark("a=b; c#d \\ e\nf", 0, 10), ChapterMark(None, 10, 20)], {"title": "x=y;z", "artist": None}),
])
def test_ffmetadata_round_trips(marks: list[ChapterMark], tags: dict[str, str | None]) -> None:
    text = ffmetadata(marks, tags)
    assert text.startswith(";FFMETADATA1\n") and text.count("TIMEBASE=1/1000") == len(marks)
    assert parse_ffmetadata(text) == ({k: v for k, v in tags.items() if v}, marks)


def test_marks_come_from_cumulative_sample_counts(chapters: list[ChapterAudio]) -> None:
    marks = chapter_marks(chapters, measure_chapters(chapters))
    assert [(m.start_ms, m.end_ms) for m in marks] == offsets_ms(chapters)
    assert all(a.end_ms == b.start_ms for a, b in zip(marks, marks[1:], strict=False))


def test_encode_errors(chapters: list[ChapterAudio], tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="unknown book format 'ogg'"):
        write_book(chapters, tmp_path / "book.ogg", "ogg")
    with pytest.raises(EncodeError, match="at least one chapter"):
        write_book([], tmp_path / "book.mp3", "mp3")
    with pytest.raises(EncodeError, match="cannot read chapter audio"):
        write_book([ChapterAudio(tmp_path / "missing.flac")], tmp_path / "book.mp3", "mp3")
    other = tmp_path / "16k.wav"
    sf.write(other, speech_like(1.0, -6.0, seed=9, rate=16000), 16000)
    with pytest.raises(EncodeError, match="different sample rates"):
        write_book([chapters[0], ChapterAudio(other)], tmp_path / "book.mp3", "mp3")


def test_assemble_from_storage(chapters: list[ChapterAudio], tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    results = []
    for i, chapter in enumerate(chapters):
        key = f"tome/c{i}/abc.flac"
        storage.put_file(key, chapter.path)
        results.append({"key": key, "title": chapter.title})
    book = assemble_book_file(storage, "tome", results, "m4b", title="Tome", author="A. N. Other")

    assert book["book_key"] == "tome/book.m4b" and storage.exists("tome/book.m4b")
    assert book["book_uri"] == storage.uri("tome/book.m4b") and book["book_format"] == "m4b"
    assert [c["title"] for c in book["chapters"]] == [c.title for c in chapters]
    assert all(c["loudness_lufs"] is not None for c in book["chapters"])
    with pytest.raises(StorageError, match="missing from storage"):
        assemble_book_file(storage, "tome", [{"key": "tome/nope.flac"}], "mp3")
