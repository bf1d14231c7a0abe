"""One book file from chapter audio files: M4B (AAC, chapter marks), MP3 (CBR) or FLAC.

Streaming passes and one ffmpeg process per encode: the first pass decodes each chapter in blocks to count
its samples (chapter marks come from decoded sample counts) and measure its loudness; the second decodes each
chapter again, applies its gain and pipes raw PCM into ffmpeg's stdin, which resamples (MP3/M4B), limits
peaks and encodes. Then the finished file is decoded as a listener's player would and measured: a lossy
codec can push a peak over the ceiling the limiter held (by how much depends on the audio, so on the run),
and limiting lowers loudness; if either promise fails, the book is encoded again with more headroom or gain.
Only one block is in memory at a time, however long the book.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from synth.errors import EncodeError
from synth.output.cover import cover_args, cover_input
from synth.output.ffmpeg import ChapterMark, decode_blocks, ffmetadata, ffmpeg_exe
from synth.output.loudness import Loudness, LoudnessMeter, matching_gains, mono_blocks

# format: (content type, resampled to the lossy rate, peak headroom for the codec in dB)
# Lossy codecs overshoot the PCM peak they are given, usually by under 1.5 dB; FLAC only rounds to 16 bits.
FORMATS: dict[str, tuple[str, bool, float]] = {
    "m4b": ("audio/mp4", True, 1.5),
    "mp3": ("audio/mpeg", True, 1.5),
    "flac": ("audio/flac", False, 0.1),
}
#: Encodes of one book at most: more headroom after a peak over the ceiling, more gain after loudness too low.
MAX_ENCODES = 5
#: Margin under the ceiling aimed at when a decoded peak was over it.
PEAK_MARGIN_DB = 0.3
#: Integrated loudness further than this from the target is corrected by another encode (promise: 1 LU).
LOUDNESS_TOLERANCE_LU = 0.5


@dataclass(frozen=True)
class ChapterAudio:
    path: Path
    title: str | None = None


@dataclass(frozen=True)
class BookOptions:
    """Loudness and encoding of book files; the task shell builds it from Settings."""

    target_lufs: float = -20.0
    peak_db: float = -3.0
    mp3_bitrate_kbps: int = 192
    aac_bitrate_kbps: int = 64
    lossy_sample_rate: int = 44100


@dataclass(frozen=True)
class BookChapter:
    title: str | None
    start_ms: int
    end_ms: int
    samples: int
    loudness_lufs: float | None  # as measured before normalisation; None when silent
    peak_db: float | None
    gain_db: float


@dataclass(frozen=True)
class BookFile:
    path: Path
    format: str
    sample_rate: int
    duration_s: float
    target_lufs: float
    chapters: tuple[BookChapter, ...]
    #: Integrated loudness and sample peak of the file as decoded (None when silent).
    loudness_lufs: float | None = None
    peak_db: float | None = None
    #: Encodes it took to keep the peak under the ceiling and the loudness near the target, and the gain added
    #: to every chapter after the first to make up for the loudness the limiter took.
    encodes: int = 1
    correction_db: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (without the local path)."""
        return {"format": self.format, "sample_rate": self.sample_rate, "duration_s": self.duration_s,
                "target_lufs": self.target_lufs, "loudness_lufs": self.loudness_lufs, "peak_db": self.peak_db,
                "encodes": self.encodes, "correction_db": self.correction_db,
                "chapters": [asdict(c) for c in self.chapters]}


def measure_chapters(chapters: Sequence[ChapterAudio]) -> list[Loudness]:
    """Decode every chapter once, in blocks: sample count, loudness and peak of each."""
    measured = []
    for chapter in chapters:
        try:
            rate = sf.info(str(chapter.path)).samplerate
            meter = LoudnessMeter(rate)
            for block in mono_blocks(chapter.path):
                meter.add(block)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise EncodeError(f"cannot read chapter audio {chapter.path}: {exc}") from exc
        measured.append(meter.result())
    return measured


def chapter_marks(chapters: Sequence[ChapterAudio], measured: Sequence[Loudness]) -> list[ChapterMark]:
    """Back-to-back marks in milliseconds from cumulative sample counts (no drift from per-chapter rounding)."""
    marks, done = [], 0
    for chapter, loudness in zip(chapters, measured, strict=True):
        start = round(done * 1000 / loudness.sample_rate)
        done += loudness.samples
        marks.append(ChapterMark(chapter.title, start, round(done * 1000 / loudness.sample_rate)))
    return marks


def measure_decoded(path: Path, sample_rate: int) -> Loudness:
    """Loudness and sample peak of an encoded file as a player decodes it (ffmpeg, float, mono)."""
    meter = LoudnessMeter(sample_rate)
    for block in decode_blocks(path, sample_rate=sample_rate):
        meter.add(block)
    return meter.result()


def retune(peak_db: float, lufs: float, options: BookOptions, headroom: float,
           extra_gain: float) -> tuple[float, float] | None:
    """(headroom, extra gain) for another encode after the decoded file measured `peak_db` and `lufs`, or None
    when it keeps both promises. A peak over the ceiling adds its excess (and a margin) to the headroom;
    loudness off the target by more than the tolerance moves every chapter's gain by the difference."""
    over = peak_db - options.peak_db
    short = options.target_lufs - lufs if math.isfinite(lufs) else 0.0  # silence has no loudness to fix
    if over <= 0 and abs(short) <= LOUDNESS_TOLERANCE_LU:
        return None
    return (headroom + over + PEAK_MARGIN_DB if over > 0 else headroom,
            extra_gain + short if abs(short) > LOUDNESS_TOLERANCE_LU else extra_gain)


def write_book(chapters: Sequence[ChapterAudio], target: Path, fmt: str, *, title: str | None = None,
               author: str | None = None, cover: Path | None = None,
               options: BookOptions | None = None) -> BookFile:
    """Encode `chapters`, in order, into one `fmt` file at `target`, every chapter at one loudness, with
    `cover` (a JPEG or PNG file) as its cover art.

    A single chapter makes a per-chapter file (e.g. one chapter's MP3). Raises EncodeError, also when the
    decoded file's peak stays over the ceiling after MAX_ENCODES encodes.
    """
    options = options or BookOptions()
    if fmt not in FORMATS:
        raise EncodeError(f"unknown book format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not chapters:
        raise EncodeError("a book needs at least one chapter")
    measured = measure_chapters(chapters)
    rates = {m.sample_rate for m in measured}
    if len(rates) != 1:
        raise EncodeError(f"chapters have different sample rates {sorted(rates)}; synthesize them with one model")
    rate = rates.pop()
    gains = matching_gains(measured, options.target_lufs)
    marks = chapter_marks(chapters, measured)
    _, resample, headroom = FORMATS[fmt]
    out_rate = options.lossy_sample_rate if resample else rate
    tags = {"title": title, "album": title, "artist": author, "album_artist": author, "genre": "Audiobook"}
    if fmt == "m4b":
        tags["media_type"] = "2"  # iTunes "stik" 2: audiobook

    extra_gain, encodes = 0.0, 0
    while True:
        encodes += 1
        with tempfile.TemporaryDirectory(prefix="book-") as tmp:
            metadata = Path(tmp) / "chapters.txt"
            metadata.write_text(ffmetadata(marks, tags), encoding="utf-8")
            args = _ffmpeg_args(fmt, rate, out_rate, metadata, target, options, headroom, cover)
            _pipe_chapters(args, chapters, [gain + extra_gain for gain in gains], target)
        decoded = measure_decoded(target, out_rate)
        retuned = retune(decoded.peak_db, decoded.lufs, options, headroom, extra_gain)
        if retuned is None or encodes == MAX_ENCODES:
            break
        headroom, extra_gain = retuned
    if decoded.peak_db > options.peak_db:
        raise EncodeError(f"{target.name}: decoded peak {decoded.peak_db:.2f} dBFS stays over the "
                          f"{options.peak_db:g} dBFS ceiling after {MAX_ENCODES} encodes")

    book_chapters = tuple(
        BookChapter(title=mark.title, start_ms=mark.start_ms, end_ms=mark.end_ms, samples=m.samples,
                    loudness_lufs=_rounded(m.lufs), peak_db=_rounded(m.peak_db), gain_db=round(gain + extra_gain, 2))
        for mark, m, gain in zip(marks, measured, gains, strict=True))
    total = sum(m.samples for m in measured)
    return BookFile(path=target, format=fmt, sample_rate=out_rate, duration_s=round(total / rate, 3),
                    target_lufs=options.target_lufs, chapters=book_chapters, loudness_lufs=_rounded(decoded.lufs),
                    peak_db=_rounded(decoded.peak_db), encodes=encodes, correction_db=round(extra_gain, 2))


def _rounded(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None


def _ffmpeg_args(fmt: str, rate: int, out_rate: int, metadata: Path, target: Path, options: BookOptions,
                 headroom: float, cover: Path | None = None) -> list[str]:
    limit = 10 ** ((options.peak_db - headroom) / 20)
    # latency=1: the limiter's look-ahead delay is compensated, so chapter marks stay on the audio.
    filters = [f"aresample={out_rate}:resampler=soxr"] if out_rate != rate else []
    filters.append(f"alimiter=limit={max(limit, 0.0625):.6f}:attack=5:release=50:level=0:latency=1")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0", "-i", str(metadata),
            *(cover_input(cover) if cover else []),
            "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1", "-af", ",".join(filters)]
    args += cover_args(fmt, 2) if cover else []
    if fmt == "m4b":
        args += ["-c:a", "aac", "-b:a", f"{options.aac_bitrate_kbps}k", "-f", "ipod", "-movflags", "+faststart"]
    elif fmt == "mp3":
        args += ["-c:a", "libmp3lame", "-b:a", f"{options.mp3_bitrate_kbps}k", "-f", "mp3"]
    else:
        args += ["-c:a", "flac", "-sample_fmt", "s16", "-f", "flac"]
    return [*args, str(target)]


def _pipe_chapters(args: list[str], chapters: Sequence[ChapterAudio], gains: Sequence[float],
                   target: Path) -> None:
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=stderr)
        assert proc.stdin is not None
        try:
            for chapter, gain_db in zip(chapters, gains, strict=True):
                gain = np.float32(10 ** (gain_db / 20))
                for block in mono_blocks(chapter.path):
                    # Not clipped: float PCM may exceed 1.0 here, the limiter brings it under the ceiling.
                    proc.stdin.write((block * gain).astype("<f4").tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        returncode = proc.wait()
        if returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()[-2000:]
            raise EncodeError(f"ffmpeg could not write {target.name}: {message or f'exit status {returncode}'}")
