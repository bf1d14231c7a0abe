"""Chapter checkpoints in storage, so a redelivered chapter resumes where the last one was saved.

Layout under `<book>/<chapter>/.checkpoint/<content-hash>/`: `state.json` (the pointer, written last)
and `part-NNNNN.wav` (float32 audio of the windows since the checkpoint before). A part not named in
state.json is ignored. A checkpoint ends on a window boundary (synth.batching).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from synth.audio import LevelStats
from synth.batching import Window
from synth.errors import CheckpointError
from synth.pipeline import Stage
from synth.storage import Storage

VERSION = 2  # 2: parts end on window boundaries, not batch boundaries


@dataclass
class ChapterState:
    chunks_total: int
    next_chunk: int = 0
    parts: list[str] = field(default_factory=list)
    stats: LevelStats = field(default_factory=LevelStats)

    def snapshot(self) -> ChapterState:
        """A copy the uploader can hold while the writer carries on."""
        return ChapterState(self.chunks_total, self.next_chunk, list(self.parts), replace(self.stats))


class Checkpoint:
    def __init__(self, storage: Storage, prefix: str) -> None:
        self.storage = storage
        self.prefix = prefix.rstrip("/") + "/"

    def record_attempt(self) -> int:
        """Count this delivery; returns how many deliveries there have been (1 on the first)."""
        key = self.prefix + "attempts.json"
        attempts = int((self.storage.get_json(key) or {}).get("attempts", 0)) + 1
        self.storage.put_json(key, {"attempts": attempts})
        return attempts

    def forget_attempt(self) -> None:
        """Un-count the current delivery: it stopped at a checkpoint on purpose (a pause), it did not die."""
        key = self.prefix + "attempts.json"
        attempts = int((self.storage.get_json(key) or {}).get("attempts", 0))
        self.storage.put_json(key, {"attempts": max(0, attempts - 1)})

    def load(self, chunks_total: int) -> ChapterState | None:
        raw = self.storage.get_json(self.prefix + "state.json")
        if raw is None:
            return None
        if raw.get("version") != VERSION or raw.get("chunks_total") != chunks_total:
            raise CheckpointError(f"checkpoint at {self.prefix} does not match this chapter")
        return ChapterState(chunks_total=chunks_total, next_chunk=int(raw["next_chunk"]),
                            parts=list(raw["parts"]), stats=LevelStats(**raw["stats"]))

    @staticmethod
    def part_name(index: int) -> str:
        return f"part-{index:05d}.wav"

    def save(self, state: ChapterState, part_file: Path) -> None:
        """Upload the newest part (`state.parts[-1]`, from `part_file`), then move the pointer past it."""
        self.storage.put_file(self.prefix + state.parts[-1], part_file, "audio/wav")
        self.storage.put_json(self.prefix + "state.json", {
            "version": VERSION, "chunks_total": state.chunks_total, "next_chunk": state.next_chunk,
            "parts": state.parts, "stats": asdict(state.stats)})

    def fetch_parts(self, state: ChapterState, directory: Path) -> list[Path]:
        paths = []
        for name in state.parts:
            target = directory / name
            if not self.storage.get_file(self.prefix + name, target):
                raise CheckpointError(f"checkpoint part {self.prefix}{name} is missing")
            paths.append(target)
        return paths

    def clear(self) -> None:
        self.storage.delete_prefix(self.prefix)


class CheckpointWriter:
    """Appends finished windows to the chapter's working file and to the current part, and saves a
    checkpoint at most every `every_s` seconds and after the last window.

    It runs on the pipeline's post stage; uploads go to `uploads`, so neither the model nor the writer
    waits on storage, and they leave in order (a state.json never names a part not yet uploaded).
    """

    def __init__(self, checkpoint: Checkpoint, state: ChapterState, out: sf.SoundFile, work: Path,
                 uploads: Stage, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.checkpoint = checkpoint
        self.state = state
        self.out = out
        self.work = work
        self.uploads = uploads
        self.every_s = every_s
        self.clock = clock
        self.saves = 0
        self._part: sf.SoundFile | None = None
        self._part_path = work
        self._saved_at = clock()

    def write(self, window: Window, blocks: list[np.ndarray]) -> None:
        if self._part is None:
            self._part_path = self.work / self.checkpoint.part_name(len(self.state.parts))
            self._part = sf.SoundFile(self._part_path, "w", samplerate=self.out.samplerate, channels=1,
                                      format="WAV", subtype="FLOAT")
        for block in blocks:
            self._part.write(block)
            self.out.write(block)
            self.state.stats.add(block)
        self.state.next_chunk = window.end
        if window.end == self.state.chunks_total or self.clock() - self._saved_at >= self.every_s:
            self._save()

    def close(self) -> None:
        """Checkpoint whatever was written since the last checkpoint (called when a run stops early, so
        the audio already made is kept); nothing when the last window was already saved."""
        if self._part is not None:
            self._save()

    def _save(self) -> None:
        assert self._part is not None
        self._part.close()
        self._part = None
        self.state.parts.append(self._part_path.name)
        self.uploads.submit(self._upload, self.state.snapshot(), self._part_path)
        self.saves += 1
        self._saved_at = self.clock()

    def _upload(self, state: ChapterState, part_file: Path) -> None:
        self.checkpoint.save(state, part_file)
        part_file.unlink()
