"""The ffmpeg arguments that attach cover art: M4B `covr`, MP3 ID3 `APIC`, FLAC `PICTURE`; not re-encoded."""

from __future__ import annotations

from pathlib import Path


def cover_args(fmt: str, input_index: int) -> list[str]:
    """Output options that copy the image of input `input_index` in as the front cover."""
    args = ["-map", f"{input_index}:v", "-c:v", "copy", "-disposition:v:0", "attached_pic"]
    if fmt == "mp3":
        # ID3v2.3 is what most players read; the comment marks the picture as the front cover.
        args += ["-id3v2_version", "3", "-metadata:s:v", "title=Cover", "-metadata:s:v", "comment=Cover (front)"]
    return args


def cover_input(path: Path) -> list[str]:
    return ["-i", str(path)]
