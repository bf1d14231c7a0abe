"""The text front end of VITS models trained on espeak-ng phonemes (kakao-enterprise/vits-ljs, vits-vctk).

transformers' VitsTokenizer (`phonemize: true` in its config) turns text into IPA with the `phonemizer`
package over espeak-ng, then looks each IPA character up; one it does not know becomes `<unk>`, which in
these checkpoints shares an id with a real phoneme, so a wrong sound would be spoken silently. Text is
therefore rewritten into what espeak reads as English, and its phonemes are checked before any GPU work.
"""

from __future__ import annotations

import logging
import string
from typing import Any, Literal

from synth.errors import ModelLoadError, TextError
from synth.text.vocab import to_vocab

# ASCII letters and the punctuation that both phonemizer keeps and these vocabularies hold; anything else is
# rewritten first by to_vocab (accents dropped, digits and symbols as words, the rest spelled by name), so
# espeak never switches language on a word or meets a character it might skip.
GRAPHEMES = frozenset(string.ascii_letters + " '-—" + ';:,.!?"')
# Letters to_vocab would rewrite badly for espeak ("ß" has no lowercase twin and would become "SS").
PRE_MAP = str.maketrans({"ß": "ss"})
INSTALL_HINT = "install the `phonemizer` package and espeak-ng (Debian: apt-get install espeak-ng)"


def phonemizes(tokenizer: Any) -> bool:
    """Whether the tokenizer turns text into phonemes before lookup."""
    return bool(getattr(tokenizer, "phonemize", False))


def check_front_end(tokenizer: Any, model: str) -> None:
    """Phonemize one word now, so a worker without phonemizer or espeak-ng fails at load, not mid-chapter."""
    # phonemizer warns on every line whose word count changed (it does for punctuation): noise in worker logs,
    # and no loss: phoneme_text checks every phoneme itself.
    logging.getLogger("phonemizer").propagate = False
    try:
        tokenizer.prepare_for_tokenization("ready")
    except (ImportError, RuntimeError) as exc:  # phonemizer missing / espeak-ng library missing
        raise ModelLoadError(f"model {model!r} reads espeak-ng phonemes: {INSTALL_HINT} ({exc})") from None


def phoneme_text(tokenizer: Any, text: str, unknown: Literal["spell", "fail"] = "spell") -> str:
    """`text` rewritten so espeak reads it as English and every phoneme it yields is in the vocabulary.

    Raises TextError naming the phonemes the model has no id for (never spoken as something else).
    """
    spoken = to_vocab(text.translate(PRE_MAP), GRAPHEMES, unknown=unknown)
    if not spoken.strip():
        return spoken
    phonemes, _ = tokenizer.prepare_for_tokenization(spoken)
    missing = sorted({p for p in phonemes if p not in tokenizer.encoder})
    if missing:
        raise TextError(f"espeak-ng gave phonemes {missing} the model has no id for, reading {spoken!r}")
    return spoken
