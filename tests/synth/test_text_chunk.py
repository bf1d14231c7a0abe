"""chunk_text: every case checks that the chunks join back to the input and respect max_chars."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.errors import TextError
from synth.text import Chunk, chunk_text, normalize, sentence_count


def chunks_of(text: str, max_chars: int) -> list[Chunk]:
    chunks = chunk_text(text, max_chars)
    assert "".join(c.text for c in chunks) == text
    assert all(0 < len(c.spoken) <= max_chars for c in chunks)
    assert [c.start for c in chunks] == [0] + [c.end for c in chunks[:-1]]
    assert chunks[-1].end == len(text)
    assert chunks[-1].paragraph_end and chunks[-1].sentence_end
    assert all(c.sentence_end for c in chunks if c.paragraph_end)
    return chunks


@pytest.mark.parametrize(
    "text,max_chars,spoken",
    [
        ("One. Two! Three? Four...", 100, ["One.", "Two!", "Three?", "Four..."]),
        ('He said "Stop." Then left.', 100, ['He said "Stop."', "Then left."]),
        ("(Quietly.) Then loud.", 100, ["(Quietly.)", "Then loud."]),
        ("J. R. R. Tolkien wrote it. Then", 100, ["J. R. R. Tolkien wrote it.", "Then"]),
        ("So do I. Then we left.", 100, ["So do I.", "Then we left."]),
        ("I was... thinking. Yes.", 100, ["I was... thinking.", "Yes."]),
        ("It is three point one four. Next", 100, ["It is three point one four.", "Next"]),
        ("Version 3.14 is out. Next", 100, ["Version 3.14 is out.", "Next"]),
        ("No ending punctuation", 100, ["No ending punctuation"]),
        ("Para one.\n\nPara two.", 100, ["Para one.", "Para two."]),
        ("Ends with a dot.", 5, ["Ends", "with", "a", "dot."]),
    ],
)
def test_sentences(text: str, max_chars: int, spoken: list[str]) -> None:
    assert [c.spoken for c in chunks_of(text, max_chars)] == spoken


def test_flags_and_offsets() -> None:
    text = "First one. Second one.\n\nThird is a much longer sentence, with a clause.\n\nFour"
    chunks = chunks_of(text, 40)
    assert [(c.spoken, c.paragraph_end, c.sentence_end) for c in chunks] == [
        ("First one.", False, True),
        ("Second one.", True, True),
        ("Third is a much longer sentence,", False, False),
        ("with a clause.", True, True),
        ("Four", True, True),
    ]
    assert chunks[1].text == "Second one.\n\n"
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert sentence_count(chunks) == 4


@pytest.mark.parametrize(
    "text,max_chars,spoken",
    [
        ("alpha, beta; gamma: delta", 12, ["alpha, beta;", "gamma: delta"]),
        ("alpha, beta; gamma: delta", 11, ["alpha,", "beta;", "gamma:", "delta"]),
        ("left side - right side", 12, ["left side -", "right side"]),
        ("one two three four five six seven", 20, ["one two three four", "five six seven"]),
        ("aaaa bbbb cccc dddd e", 19, ["aaaa bbbb", "cccc dddd e"]),  # balanced, no one-word tail
        ("x" * 25, 10, ["x" * 8, "x" * 8, "x" * 9]),
    ],
)
def test_long_sentences_split_at_clauses_then_words_then_anywhere(
    text: str, max_chars: int, spoken: list[str]
) -> None:
    chunks = chunks_of(text, max_chars)
    assert [c.spoken for c in chunks] == spoken
    assert [c.sentence_end for c in chunks] == [False] * (len(spoken) - 1) + [True]


@pytest.mark.parametrize(
    "text",
    [
        normalize("Chapter 12: Dr. Smith paid $5.50 on 3/4/2021 at 10:30; 1,234 people (50%) watched."),
        normalize("Mr. and Mrs. Smith, Jr. met St. John at 221B Baker St. Then they left, etc. Really."),
        "\u00e9t\u00e9 \u4e2d\u6587\u3002 \u0645\u0631\u062d\u0628\u0627 \u00bfQu\u00e9? \u00a1S\u00ed! ok",
        "emoji \U0001f600\U0001f600 \U0001f468\u200d\U0001f469 \u2764\ufe0f done. \U0001f44d",
        " ".join(["word"] * 1000) + ".",  # a 5,000-character sentence with no punctuation
        "a" * 5000,  # a 5,000-character token with no spaces
        "Start " + "b" * 5000 + " end.",
        "\n\n\n\nOne.\n\n\n\n\n\n\n\nTwo.\n\n\n\n",
        "   leading and trailing whitespace.   \n\n  ",
        "\n \n \t\n\nafter empty paragraphs\n\n \n\n\t\n\n",
        "line one\nline two\n\tindented\r\nwindows\r\n\r\nnext paragraph",
        "tabs\tand\u00a0odd\u2003spaces\u2028and separators",
        "!!! ??? ... ,,, ;;; - - -",
        ". . . . . . . . . . . . . . . . . . . . . . . . . . . . . . .",
        "x",
    ],
)
@pytest.mark.parametrize("max_chars", [1, 7, 50, 300])
def test_join_invariant(text: str, max_chars: int) -> None:
    chunks = chunks_of(text, max_chars)
    assert sentence_count(chunks) >= 1


def test_leading_whitespace_belongs_to_the_first_chunk() -> None:
    chunks = chunks_of("\n\n  Hello there. Bye.  \n", 100)
    assert [c.text for c in chunks] == ["\n\n  Hello there. ", "Bye.  \n"]


def test_long_run_pieces_are_balanced() -> None:
    chunks = chunks_of(" ".join(["word"] * 1000), 300)
    lengths = [len(c.spoken) for c in chunks]
    assert len(chunks) == 17 and max(lengths) - min(lengths) <= 10


@pytest.mark.parametrize("text", ["", " ", "\n\n\n", " \t\r\n\u00a0\u3000"])
def test_nothing_to_speak(text: str) -> None:
    with pytest.raises(TextError, match="nothing to speak"):
        chunk_text(text, 50)


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text("text", 0)


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text(st.sampled_from(list("ab .,!?;:-\n\"')")), max_size=300))
def test_random_text_after_normalize(text: str) -> None:
    normalized = normalize(text)
    if not normalized.strip():
        with pytest.raises(TextError):
            chunk_text(normalized, 50)
        return
    chunks_of(normalized, 50)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1).filter(lambda t: t.strip()), st.integers(1, 80))
def test_random_raw_text(text: str, max_chars: int) -> None:
    chunks_of(text, max_chars)
