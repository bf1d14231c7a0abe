"""The Storage interface: where chapter audio, manifests and checkpoints live."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from synth.errors import StorageError


def check_key(key: str) -> str:
    """Keys are relative, slash-separated, with no empty, `.` or `..` parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """Objects addressed by key. Writes are whole-object and overwrite: a redelivered task replaces."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI a result reports for `key` (`file://...` or `s3://...`)."""

    @abstractmethod
    def put_file(self, key: str, source: Path, content_type: str = "application/octet-stream") -> str:
        """Upload a local file; returns its URI."""

    @abstractmethod
    def get_file(self, key: str, target: Path) -> bool:
        """Download to `target`; False when the key does not exist."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, sorted."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None:
        """Delete the keys; missing keys are not an error."""

    def exists(self, key: str) -> bool:
        return key in self.list(key)

    def share_url(self, key: str, expires_s: int) -> str | None:
        """A URL anyone can download `key` from for `expires_s` seconds; None where storage has no such URL."""
        return None

    def put_json(self, key: str, value: Any) -> str:
        return self.put_bytes(key, json.dumps(value, sort_keys=True).encode(), "application/json")

    def get_json(self, key: str) -> Any | None:
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    def delete_prefix(self, prefix: str) -> None:
        self.delete(self.list(prefix))
