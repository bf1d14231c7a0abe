"""The offline Piper voice, for real: installed from the `offline-voice` extra, it must produce speech."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
from synth.engines import load_engine, load_engine_with_fallback, offline_voice_installed
from synth.engines.piper import GRAPHEMES, PiperEngine
from synth.errors import ModelLoadError, TextError
from synth.storage.local import LocalStorage

SENTENCE = "It is a way I have of driving off the spleen, and regulating the circulation."


@pytest.fixture(scope="module")
def piper() -> PiperEngine:
    engine = load_engine("piper", "cpu")
    assert isinstance(engine, PiperEngine)
    return engine


def speech_measures(wave: np.ndarray, rate: int) -> dict[str, float]:
    """Level, share of energy in the speech band, and how much the 50 ms envelope moves (syllables)."""
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / rate)
    frame = rate // 20
    envelope = np.sqrt(np.mean(wave[: wave.size // frame * frame].reshape(-1, frame) ** 2, axis=1))
    return {"rms_db": 10 * math.log10(float(np.mean(wave**2))),
            "speech_band": float(spectrum[(freqs >= 80) & (freqs <= 4000)].sum() / spectrum.sum()),
            "envelope_variation": float(np.std(envelope) / np.mean(envelope))}


def test_extra_is_installed_and_bundled_voice_loads(piper: PiperEngine) -> None:
    assert offline_voice_installed()
    assert piper.name == "piper:en_US-joe-medium" and piper.sample_rate == 22050
    assert piper.voices() == ["default"] and piper.resolve_voice(None) == "default"
    assert load_engine("piper:en_US-joe-medium", "cpu").name == piper.name


def test_it_speaks(piper: PiperEngine) -> None:
    [wave] = piper.synthesize([piper.speakable(SENTENCE)])
    seconds = wave.size / piper.sample_rate
    assert wave.dtype == np.float32 and np.isfinite(wave).all()
    assert 0.04 <= seconds / len(SENTENCE) <= 0.12, seconds
    measures = speech_measures(wave, piper.sample_rate)
    assert measures["rms_db"] > -40, measures  # not silence
    assert measures["speech_band"] > 0.8, measures  # voice, not broadband noise
    assert measures["envelope_variation"] > 0.5, measures  # syllables, not a steady hiss


def test_noise_from_a_random_model_is_not_taken_for_speech(tiny_engine) -> None:  # noqa: ANN001
    """The speech measures above are meaningful: random VITS weights fail them."""
    [wave] = tiny_engine.synthesize([tiny_engine.speakable(SENTENCE)], seed=1)
    measures = speech_measures(wave, tiny_engine.sample_rate)
    assert measures["speech_band"] <= 0.8 or measures["envelope_variation"] <= 0.5, measures


def test_seed_makes_it_repeatable_and_batches_keep_order(piper: PiperEngine) -> None:
    texts = [piper.speakable("Call me Ishmael."), piper.speakable(SENTENCE)]
    first = piper.synthesize(texts, seed=7)
    again = piper.synthesize(texts, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert first[0].size < first[1].size
    assert piper.synthesize([]) == [] and piper.synthesize(["..."])[0].size == 0


@pytest.mark.parametrize("text,expected", [
    ("Hello, world!", "Hello, world!"),
    ("Café naïve Zürich", "Café naïve Zürich"),  # Latin-1 letters go to espeak as they are
    ("Straße", "Strasse"),
    ("Dvořák", "Dvorák"),  # accents outside Latin-1 are decomposed
    ("½ ☃ 😀", "one over two snowman grinning face"),  # symbols are named, never dropped
    ("3 ships", "three ships"),
    ("(aside) [note]", ",aside, ,note,"),
])
def test_speakable_rewrites_but_never_drops(piper: PiperEngine, text: str, expected: str) -> None:
    spoken = piper.speakable(text)
    assert spoken == expected
    assert set(spoken) <= GRAPHEMES


def test_unknown_characters_can_be_refused(piper: PiperEngine) -> None:
    strict = PiperEngine(piper.voice, piper.name, unknown_chars="fail")
    with pytest.raises(TextError, match="U\\+2603"):
        strict.speakable("a snowman ☃")


@pytest.mark.parametrize("model,message", [
    ("piper:en_GB-nobody-low", "unknown piper voice 'en_GB-nobody-low'"),
    ("piper:/nowhere/voice.onnx", "unknown piper voice"),
])
def test_bad_piper_ids_fail_to_load(model: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_engine(model, "cpu")


def test_voice_file_needs_its_config(tmp_path: Path) -> None:
    (tmp_path / "v.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="no config file v.onnx.json"):
        load_engine(f"piper:{tmp_path / 'v.onnx'}", "cpu")


def test_fallback_uses_the_model_when_it_loads_else_the_offline_voice(tiny_model_dir: Path) -> None:
    assert load_engine_with_fallback(str(tiny_model_dir), "cpu").name == str(tiny_model_dir)
    assert load_engine_with_fallback("/no/such/model", "cpu").name == "piper:en_US-joe-medium"
    assert load_engine_with_fallback(None, "cpu").name == "piper:en_US-joe-medium"


def test_a_chapter_in_the_offline_voice(piper: PiperEngine, tmp_path: Path) -> None:
    text = "Chapter 1.\n\nCall me Ishmael. Some years ago, never mind how long precisely, I had little money."
    job = ChapterJob(book_id="b", chapter_id="c1", text=text, format="flac", seed=1)
    result = synthesize_chapter(job, piper, LocalStorage(tmp_path), SynthOptions())

    audio, rate = sf.read(result["uri"].removeprefix("file://"), dtype="float32")
    assert result["model"] == "piper:en_US-joe-medium" and rate == 22050
    assert result["duration_s"] == pytest.approx(audio.size / rate, abs=1e-3)
    spoken = result["duration_s"] - SynthOptions().head_s - SynthOptions().tail_s
    assert 0.04 <= spoken / len(text) <= 0.15
    assert 20 * math.log10(float(np.max(np.abs(audio)))) <= -3.0
