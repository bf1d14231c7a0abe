"""Load the configured model once and read one sentence with it: the worker images' model-load step.

docker/Dockerfile runs `python -m synth.engines.preload --device cpu` while building (a build has no GPU), so
the weights land in the image and a model that cannot load (a wrong id, a torch that transformers turns
off) fails the build instead of every pod. `audiobook up` runs it with `--fallback` to learn which voice a
machine without a model hub can use. Prints one JSON line; a model that cannot load exits 1 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

from synth.engines import load_engine, load_engine_with_fallback

SENTENCE = "The model is loaded."


@dataclass(frozen=True)
class Preloaded:
    """What loaded: the model name results will report, its rate, and what it replaced (with `fallback`)."""

    model: str
    sample_rate: int
    samples: int
    fallback_from: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def preload(model: str, device: str, fallback: bool = False) -> Preloaded:
    """Load `model` on `device` and synthesize one sentence; raises synth.errors.ModelLoadError."""
    from synth.engines.piper import is_piper_model

    engine = load_engine_with_fallback(model, device) if fallback else load_engine(model, device)
    [audio] = engine.synthesize([engine.speakable(SENTENCE)], seed=0)
    replaced = is_piper_model(engine.name) and not is_piper_model(model)
    return Preloaded(model=engine.name, sample_rate=engine.sample_rate, samples=int(audio.shape[-1]),
                     fallback_from=model if replaced else None)


def main(argv: list[str] | None = None) -> int:
    from settings import get_settings
    from synth.errors import ModelLoadError

    parser = argparse.ArgumentParser(prog="python -m synth.engines.preload", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="default: AUDIOBOOK_MODEL")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: AUDIOBOOK_DEVICE")
    parser.add_argument("--fallback", action="store_true", help="use the offline voice if the model cannot load")
    args = parser.parse_args(argv)
    settings = get_settings()
    model = args.model or settings.model
    try:
        loaded = preload(model, args.device or settings.device, args.fallback)
    except ModelLoadError as exc:
        print(f"preload: {exc}", file=sys.stderr)
        return 1
    print(loaded.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
