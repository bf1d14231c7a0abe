"""Random-weight VITS checkpoints on disk: the tiny one tests load, and real-size ones for benchmarks.

Nothing can be fetched from a model hub here, so the production loading path is exercised on these.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

# Characters of facebook/mms-tts-eng's vocabulary (lowercase letters, digits are not in it).
MMS_ENG_CHARS = list(string.ascii_lowercase) + [" ", "'", "-", ",", ".", "?", "!", "_"]

# Symbols of the original English VITS models (kakao-enterprise/vits-ljs, vits-vctk): "_" pads, then
# punctuation, letters and the IPA that espeak-ng writes. Their tokenizer phonemizes text before lookup.
VITS_PHONEME_SYMBOLS = (["_"] + list(';:,.!?¡¿—…"«»“” ') + list(string.ascii_uppercase + string.ascii_lowercase)
                        + list("ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐ"
                               "ʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ"))

TINY = dict(
    hidden_size=16, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64, flow_size=16,
    spectrogram_bins=8, duration_predictor_num_flows=2, duration_predictor_filter_channels=16,
    prior_encoder_num_flows=2, posterior_encoder_num_wavenet_layers=2, upsample_initial_channel=16,
    upsample_rates=[8, 2], upsample_kernel_sizes=[16, 4], resblock_kernel_sizes=[3, 7],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
)


#: Speech rate the random duration predictor is pinned to: about 14 characters a second, as MMS reads.
TOKENS_PER_SECOND = 28.0  # add_blank puts a blank token between characters


def build_random_vits(directory: Path, size: str = "tiny", seed: int = 0, front_end: str = "characters",
                      **overrides: object) -> Path:
    """Write a random VITS model + tokenizer to `directory`; `size` is `tiny` or `mms` (real config).

    `front_end` is `characters` (MMS-TTS: lowercase letters, 16 kHz) or `phonemes` (kakao-enterprise/vits-ljs:
    its symbol table and tokenizer settings, espeak-ng phonemes through the `phonemizer` package, 22.05 kHz).

    Random weights give random durations (a random stochastic duration predictor can ask for minutes of
    audio per word), so the duration predictor is the deterministic one, pinned to a natural speech rate:
    compute per output second then matches the real model's, which is what benchmarks need.
    """
    import math

    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.json"
    if front_end == "phonemes":
        # As the hub's vits-ljs: "_" pads, "<unk>" is not in the vocabulary, a repeated "'" keeps its last id.
        vocab = {symbol: i for i, symbol in enumerate(VITS_PHONEME_SYMBOLS)}
        vocab_file.write_text(json.dumps(vocab, ensure_ascii=False))
        tokenizer = VitsTokenizer(str(vocab_file), pad_token="_", language="en-us", phonemize=True, add_blank=True,
                                  normalize=True)
        vocab_size, rate = len(VITS_PHONEME_SYMBOLS), 22050
    elif front_end == "characters":
        vocab = {"<pad>": 0} | {ch: i + 1 for i, ch in enumerate(MMS_ENG_CHARS)}
        vocab_file.write_text(json.dumps(vocab))
        tokenizer = VitsTokenizer(str(vocab_file), phonemize=False, add_blank=True, normalize=True)
        vocab_size, rate = len(vocab), 16000
    else:
        raise ValueError(f"front_end must be 'characters' or 'phonemes', not {front_end!r}")
    base = TINY if size == "tiny" else {}
    config = VitsConfig(vocab_size=vocab_size, sampling_rate=rate, use_stochastic_duration_prediction=False,
                        **{**base, **overrides})
    torch.manual_seed(seed)
    model = VitsModel(config).eval()
    frames_per_second = config.sampling_rate / math.prod(config.upsample_rates)
    with torch.no_grad():
        model.duration_predictor.proj.weight.zero_()
        model.duration_predictor.proj.bias.fill_(math.log(frames_per_second / TOKENS_PER_SECOND))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
