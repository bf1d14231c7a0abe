"""The commercially usable default model's architecture, for real: VITS over espeak-ng phonemes.

A tiny random-weight copy of kakao-enterprise/vits-ljs (its symbol table and tokenizer settings) is built here
and loaded through the production path: AutoConfig, AutoTokenizer (VitsTokenizer with `phonemize: true`,
the `phonemizer` package, Debian's espeak-ng), VitsModel. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from settings import Settings
from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.engines import load_engine
from synth.engines.catalog import SUPPORTED_MODELS, markdown_table, supported_model
from synth.engines.phonemes import GRAPHEMES
from synth.engines.random_vits import VITS_PHONEME_SYMBOLS, build_random_vits
from synth.engines.vits import VitsEngine
from synth.errors import ModelLoadError, TextError
from synth.storage.local import LocalStorage
from tests.support.processes import ROOT

SENTENCE = "It is a way I have of driving off the spleen, and regulating the circulation."


@pytest.fixture(scope="module")
def ljs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_vits(tmp_path_factory.mktemp("models") / "tiny-ljs", front_end="phonemes")


@pytest.fixture(scope="module")
def ljs(ljs_dir: Path) -> VitsEngine:
    engine = load_engine(str(ljs_dir), "cpu")
    assert isinstance(engine, VitsEngine)
    return engine


def test_it_loads_through_the_real_tokenizer_and_reads_phonemes(ljs: VitsEngine, ljs_dir: Path) -> None:
    config = json.loads((ljs_dir / "tokenizer_config.json").read_text())
    assert (config["tokenizer_class"], config["phonemize"], config["pad_token"]) == ("VitsTokenizer", True, "_")
    assert ljs.sample_rate == 22050 and ljs.voices() == ["default"]
    assert type(ljs.tokenizer).__name__ == "VitsTokenizer" and ljs.tokenizer.phonemize
    # espeak-ng really ran: the ids spell IPA with stress marks, not the letters that went in
    ids = ljs.tokenizer("Hello there.")["input_ids"]
    spoken = "".join(VITS_PHONEME_SYMBOLS[i] for i in ids[1::2])
    assert spoken == "həlˈoʊ ðˈɛɹ."


@pytest.mark.parametrize("text,expected", [
    ("Hello, world!", "Hello, world!"),
    ("Café naïve Zürich", "Cafe naive Zurich"),  # espeak reads them as English words, no language switch
    ("3 ships (a lot) – ☃", "three ships ,a lot, - snowman"),
    ("Straße: ½", "Strasse: one over two"),
])
def test_text_becomes_graphemes_espeak_reads_and_nothing_is_dropped(ljs: VitsEngine, text: str,
                                                                    expected: str) -> None:
    spoken = ljs.speakable(text)
    assert spoken == expected and set(spoken) <= GRAPHEMES
    phonemes, _ = ljs.tokenizer.prepare_for_tokenization(spoken)
    assert phonemes and set(phonemes) <= set(ljs.tokenizer.encoder)


def test_a_phoneme_the_model_has_no_id_for_is_refused_not_spoken_as_another(tmp_path: Path) -> None:
    """In these checkpoints `<unk>` shares an id with a real phoneme: a missing one must stop the chapter."""
    directory = build_random_vits(tmp_path / "no-r", front_end="phonemes")
    vocab = json.loads((directory / "vocab.json").read_text())
    del vocab["ɹ"]
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    engine = load_engine(str(directory), "cpu")
    with pytest.raises(TextError, match="'ɹ'"):
        engine.speakable("A red rose.")
    assert engine.speakable("Sit.") == "Sit."


def test_a_chapter_in_the_phoneme_model(ljs: VitsEngine, tmp_path: Path) -> None:
    text = "Chapter 1.\n\nCall me Ishmael. Some years ago, I had 12 dollars; " + SENTENCE
    job = ChapterJob(book_id="b", chapter_id="c1", text=text, format="flac", seed=3)
    result = synthesize_chapter(job, ljs, LocalStorage(tmp_path), SynthOptions())
    assert result["model"] == str(ljs.name) and result["sample_rate"] == 22050
    spoken = result["duration_s"] - SynthOptions().head_s - SynthOptions().tail_s
    assert 0.03 <= spoken / len(text) <= 0.2, spoken
    again = synthesize_chapter(job, ljs, LocalStorage(tmp_path / "again"), SynthOptions())
    assert again["samples"] == result["samples"]  # seeded: the same audio


def test_many_speakers_are_voices(tmp_path: Path) -> None:
    """vits-vctk's shape: 109 speakers in the real one, four here."""
    engine = load_engine(str(build_random_vits(tmp_path / "vctk", front_end="phonemes", num_speakers=4,
                                               speaker_embedding_size=8)), "cpu")
    assert engine.voices() == ["speaker_0", "speaker_1", "speaker_2", "speaker_3"]
    waves = engine.synthesize([engine.speakable("Hello there.")] * 2, voice="speaker_2", seed=1)
    assert all(w.size > 0 and np.isfinite(w).all() for w in waves)


def test_a_worker_without_espeak_fails_at_load_not_mid_chapter(ljs_dir: Path) -> None:
    code = ("from synth.engines import load_engine\nfrom synth.errors import ModelLoadError\n"
            f"try:\n    load_engine({str(ljs_dir)!r}, 'cpu')\nexcept ModelLoadError as exc:\n    print(exc)\n")
    env = os.environ | {"PHONEMIZER_ESPEAK_LIBRARY": "/nonexistent/libespeak-ng.so.1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    assert "reads espeak-ng phonemes" in out.stdout and "apt-get install espeak-ng" in out.stdout, out.stderr


def test_unknown_model_type_and_missing_model_are_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError):
        load_engine(str(tmp_path / "nothing-here"), "cpu")


def test_the_default_model_may_be_sold_and_the_readme_says_which_may() -> None:
    default = Settings.model_fields["model"].default
    entry = supported_model(default)
    assert entry is not None and entry.sellable and "phonemes" in entry.engine
    assert supported_model("facebook/mms-tts-eng").sellable is False  # CC BY-NC
    assert supported_model("piper") == supported_model("piper:en_US-joe-medium")
    assert any(m.sellable for m in SUPPORTED_MODELS) and any(not m.sellable for m in SUPPORTED_MODELS)
    assert markdown_table() in (ROOT / "README.md").read_text(), "README's model table is out of date"
