"""The Engine interface: one per model family, each in its own module."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class Engine(ABC):
    """A loaded TTS model that turns short texts into mono float32 waveforms."""

    #: What results report as `model` (hub id or directory, plus family).
    name: str
    sample_rate: int
    #: Rows per forward pass this engine does best with, when the settings do not say.
    batch_rows: int = 1

    @abstractmethod
    def speakable(self, text: str) -> str:
        """`text` rewritten so every character is one the model reads; raises TextError if impossible."""

    @abstractmethod
    def voices(self) -> list[str]:
        """Voice names this model accepts; the first is the default."""

    @abstractmethod
    def synthesize(self, texts: Sequence[str], *, voice: str | None = None,
                   seed: int | None = None) -> list[np.ndarray]:
        """One waveform per text, in one batched pass where the model allows it.

        With a seed the output is deterministic for the same texts.
        """

    def resolve_voice(self, voice: str | None) -> str:
        """The voice to use, validated against `voices()`."""
        from synth.errors import TextError

        known = self.voices()
        if voice is None or voice == "default":
            return known[0]
        if voice not in known:
            shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
            raise TextError(f"unknown voice {voice!r} for model {self.name}; known: {shown}")
        return voice
