"""Preview text: normalised, cut at a sentence boundary to fit the preview length, and its cache key.

Pure: numbers and strings in, numbers and strings out (no engine, storage, Redis or Celery).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from synth.errors import TextError
from synth.text.chunk import Chunk, chunk_text
from synth.text.normalize import normalize

CACHE_PREFIX = "previews"

# Only the head of a long text can be spoken in a preview; normalising a whole 200k-character chapter to
# keep 400 characters of it would be wasted work. Normalisation barely shrinks text, so this margin is ample.
_HEAD_FACTOR = 8
_HEAD_MIN = 2000


@dataclass(frozen=True)
class FittedText:
    """The normalised text a preview will speak."""

    text: str
    #: characters of the caller's text
    characters_in: int
    #: True when text was left out to fit the preview length
    cut: bool


def char_budget(max_seconds: float, seconds_per_char: float) -> int:
    """Most normalised characters (spaces included) a preview may speak."""
    return max(1, int(max_seconds / seconds_per_char))


def fit_chunks(chunks: list[Chunk], budget: int) -> int:
    """How many leading chunks to keep: the most that fit `budget`, ending at a sentence where possible.

    The joined text of the first n chunks is `normalized[:chunks[n-1].end]`; its length without trailing
    whitespace is what counts. The first chunk always fits when chunks were cut to at most `budget`.
    """
    fitting = 0
    last_sentence = 0
    for index, chunk in enumerate(chunks):
        if chunk.start + len(chunk.text.rstrip()) > budget:
            break
        fitting = index + 1
        if chunk.sentence_end:
            last_sentence = index + 1
    return last_sentence or max(fitting, 1)


def fit_text(text: str, max_seconds: float, seconds_per_char: float, max_chunk_chars: int) -> FittedText:
    """Normalise `text` and cut it at a sentence boundary (else a clause, else a word) to fit the preview.

    Raises synth.errors.TextError when nothing speakable is left.
    """
    budget = char_budget(max_seconds, seconds_per_char)
    head_chars = max(budget * _HEAD_FACTOR, _HEAD_MIN)
    if len(text) > head_chars:
        try:
            fitted = _fit_normalized(normalize(_cut_at_space(text, head_chars)), budget, max_chunk_chars)
            if fitted.cut:
                return FittedText(fitted.text, len(text), cut=True)
        except TextError:
            pass
        # The head was all whitespace or fit whole: only the full text says where to cut.
    fitted = _fit_normalized(normalize(text), budget, max_chunk_chars)
    return FittedText(fitted.text, len(text), fitted.cut)


def _fit_normalized(normalized: str, budget: int, max_chunk_chars: int) -> FittedText:
    chunks = chunk_text(normalized, min(max_chunk_chars, budget))
    keep = fit_chunks(chunks, budget)
    spoken = normalized[: chunks[keep - 1].end].strip()
    return FittedText(spoken, len(normalized), keep < len(chunks))


def _cut_at_space(text: str, limit: int) -> str:
    space = max(text.rfind(ch, 0, limit + 1) for ch in " \n\t")
    return text[:space] if space > 0 else text[:limit]


def cache_key(normalized: str, voice: str | None, model: str, fmt: str) -> str:
    """`previews/<hash>`: the same (normalised text, voice, model, format) always maps to the same key."""
    identity = json.dumps({"text": normalized, "voice": voice or "default", "model": model, "format": fmt},
                          sort_keys=True)
    return f"{CACHE_PREFIX}/{hashlib.sha256(identity.encode()).hexdigest()[:32]}"
