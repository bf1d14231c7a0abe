"""Images a book file can carry as cover art (M4B, MP3 and FLAC all hold JPEG and PNG as they are)."""

from __future__ import annotations

#: File signatures of the image types book files carry.
SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}
SUFFIXES = {"jpeg": ".jpg", "png": ".png"}


def image_type(head: bytes) -> str | None:
    """`jpeg` or `png` from a file's first bytes; None for anything else."""
    return next((kind for signature, kind in SIGNATURES.items() if head.startswith(signature)), None)
