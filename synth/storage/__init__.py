"""Storage backends behind one interface, chosen by URL scheme."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from synth.errors import StorageError
from synth.storage.base import Storage

__all__ = ["Storage", "open_storage"]


def open_storage(url: str) -> Storage:
    """`file:///abs/path` (or a plain path) -> LocalStorage; `s3://bucket/prefix` -> S3Storage."""
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        from synth.storage.local import LocalStorage

        return LocalStorage(Path(unquote(parts.path) if parts.scheme else url))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"storage URL {url!r} names no bucket")
        from synth.storage.s3 import S3Storage

        return S3Storage(parts.netloc, parts.path)
    raise StorageError(f"unsupported storage URL scheme {parts.scheme!r} (use file:// or s3://)")
