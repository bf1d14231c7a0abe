"""Preview text: the cut at a sentence boundary and the cache key, from tables."""

from __future__ import annotations

import pytest

from synth.errors import TextError
from synth.preview import cache_key, char_budget, fit_text
from synth.text.normalize import normalize

SENTENCES = "The ship left at dawn. Nobody waved goodbye. Rain fell all night, and the deck was wet."


@pytest.mark.parametrize("max_seconds,seconds_per_char,budget", [
    (30, 0.07, 428), (30, 0.1, 300), (1, 0.5, 2), (0.01, 1.0, 1),
])
def test_char_budget(max_seconds: float, seconds_per_char: float, budget: int) -> None:
    assert char_budget(max_seconds, seconds_per_char) == budget


@pytest.mark.parametrize("text,budget,expected,cut", [
    (SENTENCES, 1000, SENTENCES, False),
    (SENTENCES, len(SENTENCES), SENTENCES, False),
    (SENTENCES, len(SENTENCES) - 1, "The ship left at dawn. Nobody waved goodbye.", True),
    (SENTENCES, 44, "The ship left at dawn. Nobody waved goodbye.", True),
    (SENTENCES, 43, "The ship left at dawn.", True),
    (SENTENCES, 22, "The ship left at dawn.", True),
    # The first sentence alone is too long: a clause, then a word boundary.
    ("Rain fell all night, and the deck was wet.", 25, "Rain fell all night,", True),
    ("Rain fell all night and the deck was wet.", 12, "Rain fell", True),
    # Paragraphs survive the cut.
    ("One here.\n\nTwo there. Three.", 21, "One here.\n\nTwo there.", True),
])
def test_cut_at_the_last_sentence_that_fits(text: str, budget: int, expected: str, cut: bool) -> None:
    fitted = fit_text(text, max_seconds=budget, seconds_per_char=1.0, max_chunk_chars=300)
    assert (fitted.text, fitted.cut, fitted.characters_in) == (expected, cut, len(text))
    assert len(fitted.text) <= budget


def test_text_is_normalised_before_it_is_measured() -> None:
    fitted = fit_text("It cost $3 in 1851. Then more.", max_seconds=1000, seconds_per_char=1.0, max_chunk_chars=300)
    assert fitted.text == normalize("It cost $3 in 1851. Then more.") and "1851" not in fitted.text


@pytest.mark.parametrize("repeat", [1, 50, 2000])
def test_long_text_keeps_only_a_sentence_aligned_head(repeat: int) -> None:
    text = " ".join(f"Sentence number {n} is right here." for n in range(repeat))
    fitted = fit_text(text, max_seconds=30, seconds_per_char=0.07, max_chunk_chars=300)
    assert 0 < len(fitted.text) <= 428 and fitted.text.endswith(".")
    assert normalize(text).startswith(fitted.text)
    assert fitted.cut == (len(normalize(text)) > 428)
    assert normalize(fitted.text) == fitted.text  # the handler normalises again: nothing may change


def test_a_head_of_whitespace_falls_back_to_the_whole_text() -> None:
    text = " " * 20_000 + "Finally some words. And more words."
    fitted = fit_text(text, max_seconds=20, seconds_per_char=1.0, max_chunk_chars=300)
    assert fitted.text == "Finally some words." and fitted.cut


@pytest.mark.parametrize("text", ["   ", "\u200b\u200b"])
def test_nothing_to_speak_is_a_text_error(text: str) -> None:
    with pytest.raises(TextError):
        fit_text(text, max_seconds=30, seconds_per_char=0.07, max_chunk_chars=300)


def test_cache_key_depends_on_text_voice_model_and_format_only() -> None:
    key = cache_key("hello there.", None, "facebook/mms-tts-eng", "wav")
    assert key.startswith("previews/") and key == cache_key("hello there.", "default", "facebook/mms-tts-eng", "wav")
    others = {cache_key("hello there!", None, "facebook/mms-tts-eng", "wav"),
              cache_key("hello there.", "speaker_1", "facebook/mms-tts-eng", "wav"),
              cache_key("hello there.", None, "other-model", "wav"),
              cache_key("hello there.", None, "facebook/mms-tts-eng", "flac")}
    assert key not in others and len(others) == 4
