"""Engine loading. Model families register here; imports of torch/transformers/piper stay lazy."""

from __future__ import annotations

import logging

from synth.engines.base import Engine

__all__ = ["Engine", "load_engine", "load_engine_with_fallback", "offline_voice_installed"]

log = logging.getLogger(__name__)


def load_engine(model: str, device: str = "auto", unknown_chars: str = "spell",
                tune_allocator: bool = True) -> Engine:
    """Load the engine for `model` on `device` (auto|cpu|cuda).

    `model` is a hub id or a local directory (transformers), or `piper[:voice]` for the offline Piper voice.
    A process that loads an engine synthesizes: its allocator is tuned for that first (synth.allocator);
    `tune_allocator=False` is for measuring against glibc's defaults.
    """
    from synth.engines.piper import is_piper_model
    from synth.errors import ModelLoadError

    if tune_allocator:
        from synth.allocator import tune_for_synthesis

        tune_for_synthesis()

    if is_piper_model(model):
        from synth.engines.piper import PiperEngine

        return PiperEngine.load(model, device, unknown_chars)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except Exception as exc:  # noqa: BLE001 - hub, file and parse errors all mean "cannot load"
        raise ModelLoadError(f"cannot load model config for {model!r}: {exc}") from exc
    model_type = getattr(config, "model_type", None)
    if model_type == "vits":
        from synth.engines.vits import VitsEngine

        return VitsEngine.load(model, device, unknown_chars)
    raise ModelLoadError(f"model {model!r} has type {model_type!r}; supported: vits, piper")


def offline_voice_installed() -> bool:
    """True when the `offline-voice` extra (piper-tts and its bundled voice) is installed."""
    from synth.engines.piper import offline_voice_installed as installed

    return installed()


def load_engine_with_fallback(model: str | None, device: str = "auto") -> Engine:
    """The configured model if it loads; else the bundled Piper voice when that extra is installed.

    With neither, the configured model's ModelLoadError is raised. An unset model goes straight to Piper.
    """
    from synth.engines.piper import MODEL_PREFIX, offline_voice_installed
    from synth.errors import ModelLoadError

    if not model:
        if offline_voice_installed():
            return load_engine(MODEL_PREFIX, device)
        raise ModelLoadError("no model configured (AUDIOBOOK_MODEL) and the offline voice is not installed")
    try:
        return load_engine(model, device)
    except ModelLoadError as exc:
        if not offline_voice_installed():
            raise
        log.warning("model %s cannot be loaded (%s); using the offline Piper voice", model, exc)
        try:
            return load_engine(MODEL_PREFIX, device)
        except ModelLoadError:
            raise exc from None
