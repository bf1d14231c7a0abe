"""VITS-family models through transformers: character models (MMS-TTS, e.g. facebook/mms-tts-eng) and
espeak-ng phoneme models (kakao-enterprise/vits-ljs, vits-vctk; front end in synth.engines.phonemes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, VitsModel

from synth.engines.base import Engine
from synth.engines.phonemes import check_front_end, phoneme_text, phonemizes
from synth.errors import ModelLoadError
from synth.text.vocab import to_vocab

_SPECIAL = {"<pad>", "<unk>"}


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("AUDIOBOOK_DEVICE=cuda but no CUDA device is available")
    return torch.device(device)


class VitsEngine(Engine):
    """Batched VITS: padded input ids plus an attention mask; each row cut to its sequence length."""

    def __init__(self, model: VitsModel, tokenizer: Any, name: str, unknown_chars: str = "spell") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.sample_rate = int(model.config.sampling_rate)
        self.unknown_chars = unknown_chars
        # get_vocab() has a None entry where an id is unused (vits-ljs's symbol table repeats "'").
        self.vocab = frozenset(k for k in tokenizer.get_vocab() if isinstance(k, str) and len(k) == 1
                               and k not in _SPECIAL)
        # On a GPU many rows per pass keep it busy (not yet measured: bench/gpu_check.sh); on a CPU even
        # length-sorted batches are slower than one row at a time (bench/batching.py).
        self.batch_rows = 32 if model.device.type == "cuda" else 1

    @classmethod
    def load(cls, model_id: str, device: str = "auto", unknown_chars: str = "spell") -> VitsEngine:
        target = pick_device(device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_id)
            dtype = torch.float16 if target.type == "cuda" else torch.float32
            model = VitsModel.from_pretrained(model_id, dtype=dtype)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"cannot load VITS model {model_id!r}: {exc}") from exc
        if phonemizes(tokenizer):
            check_front_end(tokenizer, model_id)
        model.to(target).eval()
        return cls(model, tokenizer, name=model_id, unknown_chars=unknown_chars)

    def voices(self) -> list[str]:
        speakers = int(getattr(self.model.config, "num_speakers", 1) or 1)
        return ["default"] if speakers <= 1 else [f"speaker_{i}" for i in range(speakers)]

    def speakable(self, text: str) -> str:
        if phonemizes(self.tokenizer):
            return phoneme_text(self.tokenizer, text, self.unknown_chars)  # type: ignore[arg-type]
        return to_vocab(text, self.vocab, unknown=self.unknown_chars)  # type: ignore[arg-type]

    @torch.inference_mode()
    def synthesize(self, texts: Sequence[str], *, voice: str | None = None,
                   seed: int | None = None) -> list[np.ndarray]:
        if not texts:
            return []
        voice = self.resolve_voice(voice)
        device = self.model.device
        batch = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        kwargs: dict[str, Any] = {
            "input_ids": batch["input_ids"].to(device),
            "attention_mask": batch["attention_mask"].to(device),
        }
        if voice.startswith("speaker_"):
            kwargs["speaker_id"] = int(voice.removeprefix("speaker_"))
        if seed is not None:
            # VITS samples noise from the global generator; seeding per batch makes a batch repeatable.
            torch.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed_all(seed)
        out = self.model(**kwargs)
        waves = out.waveform.float().cpu().numpy()
        lengths = out.sequence_lengths.cpu().numpy()
        return [np.ascontiguousarray(waves[i, : int(lengths[i])], dtype=np.float32) for i in range(len(texts))]
