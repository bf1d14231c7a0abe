"""The models this project supports, with the licence of their weights and data: whose audio may be sold.

Pure data (no torch): `audiobook voices` and the README's model table read it. A model not listed here may
still load (any VITS checkpoint, any Piper voice file), but nobody has checked whether its audio may be sold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SupportedModel:
    #: The `AUDIOBOOK_MODEL` value.
    model: str
    engine: str
    voices: str
    sample_rate: int
    #: Licence of the weights, then of the recordings they were trained on.
    licence: str
    #: Whether audiobooks made with it may be sold.
    sellable: bool
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SUPPORTED_MODELS: tuple[SupportedModel, ...] = (
    SupportedModel(
        "kakao-enterprise/vits-ljs", "vits (espeak-ng phonemes)", "1: `default` (US English, female)", 22050,
        "weights MIT; LJ Speech recordings public domain", True,
        "needs the `phonemizer` package and espeak-ng (installed by the `synth`/`gpu` extras, `.ci/run` and "
        "docker/Dockerfile)"),
    SupportedModel(
        "kakao-enterprise/vits-vctk", "vits (espeak-ng phonemes)", "109: `speaker_0` .. `speaker_108` "
        "(English accents)", 22050, "weights MIT; VCTK recordings CC BY 4.0", True,
        "CC BY 4.0 asks for credit: name the CSTR VCTK Corpus in the book's credits; same front end as vits-ljs"),
    SupportedModel(
        "facebook/mms-tts-eng", "vits (characters)", "1: `default` (English)", 16000, "CC BY-NC 4.0", False,
        "non-commercial: for trials and previews only"),
    SupportedModel(
        "piper:en_US-joe-medium", "piper (offline voice)", "1: `default` (US English, male)", 22050,
        "voice files MIT, its own recordings CC0; piper-tts GPL-3.0", False,
        "not cleared: fine-tuned from Piper's lessac voice, trained on Blizzard 2013 recordings whose licence is "
        "non-commercial"),
)


def supported_model(model: str) -> SupportedModel | None:
    """The catalogue entry of an `AUDIOBOOK_MODEL` value (`piper` means its bundled voice), or None."""
    wanted = "piper:en_US-joe-medium" if model == "piper" else model
    return next((entry for entry in SUPPORTED_MODELS if entry.model == wanted), None)


def markdown_table() -> str:
    """The README's table of supported models (a test keeps README in step with this module)."""
    rows = ["| `AUDIOBOOK_MODEL` | engine | voices | rate | licence | audio may be sold | note |",
            "|---|---|---|---|---|---|---|"]
    rows += [f"| `{m.model}` | {m.engine} | {m.voices} | {m.sample_rate} Hz | {m.licence} | "
             f"{'**yes**' if m.sellable else '**no**'} | {m.note} |" for m in SUPPORTED_MODELS]
    return "\n".join(rows)
