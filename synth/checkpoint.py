"""Chapter checkpoints in storage: progress after each batch, so a redelivered chapter resumes.

Layout under `<book>/<chapter>/.checkpoint/<content-hash>/`: `state.json` (the pointer, written last)
and `part-NNNNN.wav` (float32 audio of one batch). A part not named in state.json is ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from synth.audio import LevelStats
from synth.errors import CheckpointError
from synth.storage import Storage

VERSION = 1


@dataclass
class ChapterState:
    chunks_total: int
    next_chunk: int = 0
    parts: list[str] = field(default_factory=list)
    stats: LevelStats = field(default_factory=LevelStats)


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

    def save(self, state: ChapterState, part_file: Path) -> None:
        """Upload one batch's audio, then move the pointer past it."""
        name = f"part-{len(state.parts):05d}.wav"
        self.storage.put_file(self.prefix + name, part_file, "audio/wav")
        state.parts.append(name)
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
