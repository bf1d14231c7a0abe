"""The preview endpoint's RunPod serverless handler; the endpoint image runs `python -m synth.serverless`.

Handler contract (the endpoint's API; keep it stable):
- input: `{"text": str, "voice": str | null, "format": "wav" | "flac"}` (voice and format optional);
- output: `{"audio_b64" or "uri", "format", "sample_rate", "duration_s", "characters"}`: a `uri` when
  AUDIOBOOK_STORAGE_URL is set in the endpoint's environment (give it the workers' `s3://` storage),
  else the clip inline as base64 (previews are small). `characters` counts the normalised text spoken.
- A refused input returns `{"error": "invalid input: ..."}`: the job FAILS with that message, and sending
  it again cannot help. Any other failure FAILS the job with the SDK's error record.

Serverless is for previews only: text beyond the preview budget (PREVIEW_MAX_SECONDS /
PREVIEW_SECONDS_PER_CHAR characters after normalisation) is refused, never cut here, and no clip is longer
than PREVIEW_MAX_SECONDS.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from settings import Settings, get_settings
from synth.audio import FORMATS
from synth.chapter import SynthOptions
from synth.clip import CLIP_HEAD_S, CLIP_TAIL_S, encode, render_clip
from synth.engines.base import Engine
from synth.errors import TextError
from synth.preview import cache_key, char_budget
from synth.storage import Storage, open_storage
from synth.text.normalize import normalize

log = logging.getLogger(__name__)

INVALID_INPUT = "invalid input: "
_VOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Raw text this many times the budget is refused before normalising it: no preview is that long.
_RAW_FACTOR = 4

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class InvalidInput(ValueError):
    """The job's input breaks the contract; the message names the field."""


@dataclass(frozen=True)
class ClipLimits:
    """What one preview may be: at most `max_chars` normalised characters and `max_seconds` of audio."""

    max_chars: int
    max_seconds: float
    options: SynthOptions

    @classmethod
    def from_settings(cls, s: Settings, engine: Engine | None = None) -> ClipLimits:
        options = replace(SynthOptions.from_settings(s, engine), head_s=CLIP_HEAD_S, tail_s=CLIP_TAIL_S)
        return cls(char_budget(s.preview_max_seconds, s.preview_seconds_per_char), s.preview_max_seconds, options)


def parse_input(raw: object, max_chars: int) -> tuple[str, str | None, str]:
    """(text, voice, format) from a job's input, or InvalidInput naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"input must be an object with 'text', got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"text", "voice", "format"})
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}")
    text, voice, fmt = raw.get("text"), raw.get("voice"), raw.get("format") or "wav"
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("text: must be a non-empty string")
    if len(text) > max_chars * _RAW_FACTOR:
        raise InvalidInput(f"text: has {len(text)} characters; a preview speaks at most {max_chars}")
    if voice is not None and (not isinstance(voice, str) or not _VOICE.match(voice)):
        raise InvalidInput("voice: must be 1-64 letters, digits, '.', '_' or '-'")
    if fmt not in FORMATS:
        raise InvalidInput(f"format: must be one of {', '.join(FORMATS)}")
    return text, voice, fmt


def run_preview(raw: object, engine: Engine, limits: ClipLimits, storage: Storage | None = None) -> dict[str, Any]:
    """Validate one job's input, speak it and return the contract's output."""
    text, voice, fmt = parse_input(raw, limits.max_chars)
    normalized = normalize(text)
    if len(normalized) > limits.max_chars:
        raise InvalidInput(f"text: has {len(normalized)} characters after normalisation; a preview speaks at "
                           f"most {limits.max_chars} (PREVIEW_MAX_SECONDS / PREVIEW_SECONDS_PER_CHAR)")
    try:
        engine.resolve_voice(voice)
    except TextError as exc:
        raise InvalidInput(f"voice: {exc}") from None
    clip = render_clip(engine, normalized, limits.options, voice=voice, max_seconds=limits.max_seconds)
    data = encode(clip, engine.sample_rate, fmt)
    output: dict[str, Any] = {"format": fmt, "sample_rate": engine.sample_rate,
                              "duration_s": round(clip.size / engine.sample_rate, 3),
                              "characters": len(normalized)}
    if storage is None:
        output["audio_b64"] = base64.b64encode(data).decode("ascii")
    else:
        key = f"{cache_key(normalized, voice, engine.name, fmt)}.{fmt}"
        output["uri"] = storage.put_bytes(key, data, FORMATS[fmt][2])
    return output


def endpoint_storage(s: Settings) -> Storage | None:
    """Storage only when the endpoint was given AUDIOBOOK_STORAGE_URL; the default path is not shared."""
    return open_storage(s.storage_uri) if "storage_url" in s.model_fields_set else None


def make_handler(load_engine: Callable[[], Engine], settings: Callable[[], Settings] = get_settings) -> Handler:
    """A RunPod handler over an engine loader (the image loads from settings; tests pass a tiny model)."""

    def handler(job: dict[str, Any]) -> dict[str, Any]:
        s = settings()
        try:
            engine = load_engine()
            return run_preview(job.get("input"), engine, ClipLimits.from_settings(s, engine), endpoint_storage(s))
        except (InvalidInput, TextError) as exc:
            return {"error": INVALID_INPUT + str(exc)}

    return handler


@functools.cache
def process_engine() -> Engine:
    """The endpoint process's engine, loaded once and kept for every job it serves."""
    from synth.engines import load_engine

    s = get_settings()
    engine = load_engine(s.model, s.device)
    engine.unknown_chars = s.unknown_chars  # type: ignore[attr-defined]
    log.info("loaded model %s (pid %d)", engine.name, os.getpid())
    return engine


handler = make_handler(process_engine)


def main() -> None:
    import runpod

    process_engine()  # before the first job, so no request waits for the model load
    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
