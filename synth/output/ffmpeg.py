"""The ffmpeg binary that ships in the imageio-ffmpeg wheel (no system install), and its chapter metadata.

`ffmetadata` writes the `;FFMETADATA1` text ffmpeg reads chapter marks from; `read_chapter_marks` reads
them back from a finished file; `decode_blocks` streams any file ffmpeg can read as float32 PCM.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import EncodeError

_ESCAPED = re.compile(r"([=;#\\\n])")


@dataclass(frozen=True)
class ChapterMark:
    title: str | None
    start_ms: int
    end_ms: int


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # noqa: BLE001 - missing package or binary
        raise EncodeError(f"no ffmpeg binary: {exc} (install imageio-ffmpeg)") from exc


def _escape(value: str) -> str:
    return _ESCAPED.sub(r"\\\1", value)


def ffmetadata(marks: Sequence[ChapterMark], tags: dict[str, str | None]) -> str:
    """An `;FFMETADATA1` document: global tags, then one `[CHAPTER]` per mark in milliseconds."""
    lines = [";FFMETADATA1"]
    lines += [f"{key}={_escape(value)}" for key, value in tags.items() if value]
    for mark in marks:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={mark.start_ms}", f"END={mark.end_ms}"]
        if mark.title:
            lines.append(f"title={_escape(mark.title)}")
    return "\n".join(lines) + "\n"


def parse_ffmetadata(text: str) -> tuple[dict[str, str], list[ChapterMark]]:
    """Global tags and chapter marks (converted to milliseconds) of an `;FFMETADATA1` document."""
    tags: dict[str, str] = {}
    chapters: list[dict[str, str]] = []
    section: dict[str, str] | None = tags
    for line in _logical_lines(text):
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("["):
            section = {} if line == "[CHAPTER]" else None
            if section is not None:
                chapters.append(section)
            continue
        if section is not None and "=" in line:
            key, value = _split_unescaped(line)
            section[key.lower() if section is not tags else key] = value
    marks = []
    for chapter in chapters:
        num, _, den = chapter.get("timebase", "1/1000").partition("/")
        scale = 1000 * int(num) / int(den or 1)
        marks.append(ChapterMark(chapter.get("title"), round(int(chapter["start"]) * scale),
                                 round(int(chapter["end"]) * scale)))
    return tags, marks


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with escaped newlines joined back."""
    buffer = ""
    for line in text.split("\n"):
        if line.endswith("\\") and not line.endswith("\\\\"):
            buffer += line[:-1] + "\n"
            continue
        yield buffer + line
        buffer = ""


def _split_unescaped(line: str) -> tuple[str, str]:
    key, value, escaped, target = [], [], False, None
    current = key
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=" and target is None:
            target = current = value
        else:
            current.append(char)
    return "".join(key), "".join(value)


def run_ffmpeg(args: Sequence[str], what: str) -> str:
    """Run ffmpeg to completion; returns stdout, or raises EncodeError with ffmpeg's message."""
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EncodeError(f"ffmpeg failed to {what}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def read_chapter_marks(path: Path) -> tuple[dict[str, str], list[ChapterMark]]:
    """Tags and chapter marks of an encoded book, as ffmpeg reads them back."""
    return parse_ffmetadata(run_ffmpeg(["-i", str(path), "-f", "ffmetadata", "-"], f"read metadata of {path}"))


def decode_blocks(path: Path, sample_rate: int | None = None, blocksize: int = 1 << 16) -> Iterator[np.ndarray]:
    """Mono float32 blocks of any file ffmpeg reads (resampled to `sample_rate` when given)."""
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path), "-ac", "1"]
    args += ["-ar", str(sample_rate)] if sample_rate else []
    with subprocess.Popen([*args, "-f", "f32le", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        while chunk := proc.stdout.read(blocksize * 4):
            yield np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype="<f4")
        error = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise EncodeError(f"ffmpeg failed to decode {path}: {error.strip()[-2000:]}")
