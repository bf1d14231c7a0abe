"""Engine loading. Model families register here; imports of torch/transformers stay lazy."""

from __future__ import annotations

from synth.engines.base import Engine

__all__ = ["Engine", "load_engine"]


def load_engine(model: str, device: str = "auto") -> Engine:
    """Load the engine for `model` (a hub id or a local directory) on `device` (auto|cpu|cuda)."""
    from synth.errors import ModelLoadError

    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except Exception as exc:  # noqa: BLE001 - hub, file and parse errors all mean "cannot load"
        raise ModelLoadError(f"cannot load model config for {model!r}: {exc}") from exc
    model_type = getattr(config, "model_type", None)
    if model_type == "vits":
        from synth.engines.vits import VitsEngine

        return VitsEngine.load(model, device)
    raise ModelLoadError(f"model {model!r} has type {model_type!r}; supported: vits")
