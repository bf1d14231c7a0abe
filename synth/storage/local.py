"""Storage in a local directory (the embedded default, `./var/audio`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from synth.errors import StorageError
from synth.storage.base import Storage, check_key

FILE_MODE = 0o666
_UMASK = os.umask(0o022)  # read the process umask (there is no getter) and put it back at once
os.umask(_UMASK)


class LocalStorage(Storage):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def _atomic_write(self, key: str, writer) -> str:  # noqa: ANN001
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            # mkstemp makes 0600 files; stored audio, books and manifests get what open() would give (0644).
            os.fchmod(fd, FILE_MODE & ~_UMASK)
            with os.fdopen(fd, "wb") as handle:
                writer(handle)
            os.replace(tmp, path)  # readers never see a half-written object
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write {path}: {exc}") from exc
        return path.as_uri()

    def put_file(self, key: str, source: Path, content_type: str = "application/octet-stream") -> str:
        def copy(handle) -> None:  # noqa: ANN001
            with open(source, "rb") as src:
                shutil.copyfileobj(src, handle, 1 << 20)

        return self._atomic_write(key, copy)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        return self._atomic_write(key, lambda handle: handle.write(data))

    def get_file(self, key: str, target: Path) -> bool:
        path = self._path(key)
        if not path.is_file():
            return False
        shutil.copyfile(path, target)
        return True

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in start.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith(".tmp-"))

    def delete_prefix(self, prefix: str) -> None:
        # A writer killed mid-write leaves a `.tmp-*` file that list() hides; it goes with its prefix.
        base = self.root / prefix
        strays = [p.relative_to(self.root).as_posix() for p in base.rglob(".tmp-*")] if base.is_dir() else []
        self.delete(self.list(prefix) + strays)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            for parent in path.parents:  # prune directories the delete left empty
                try:
                    if parent == self.root or any(parent.iterdir()):
                        break
                    parent.rmdir()
                except OSError:  # a concurrent writer filled or removed it: leave it be
                    break
