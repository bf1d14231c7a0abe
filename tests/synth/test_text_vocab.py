"""to_vocab: every character ends up in the vocabulary, or the call says which one could not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.errors import TextError
from synth.text import normalize, to_vocab

SMALL = frozenset("abcdefghijklmnopqrstuvwxyz '-,.")
MMS_ENGLISH = frozenset("abcdefghijklmnopqrstuvwxyz '-_") | {"<pad>", "<unk>"}  # multi-char tokens ignored


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Hello World", "hello world"),
        ("Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m", "cafe naive resume angstrom"),
        ("cafe\u0301", "cafe"),
        ("\ufb01ne \uff21BC", "fine abc"),
        ("x\u00b2", "x two"),
        ("\u00bd", "one over two"),
        ("42 apples", "forty-two apples"),
        ("007", "zero zero seven"),
        ("\u0663 \uff15", "three five"),  # Arabic-Indic and fullwidth digits
        ("Hi; there: now! Why?", "hi, there, now. why."),
        ('\u201cquoted\u201d \u2018single\u2019 "plain"', "'quoted' 'single' 'plain'"),
        ("(aside) [note] {set}", ",aside, ,note, ,set,"),
        ("wait\u2014now \u2013 then", "wait-now - then"),
        ("so\u2026", "so..."),
        ("\u00bfQu\u00e9? \u00a1S\u00ed!", "que. si."),
        (
            "a/b & c @ d + e = f % # 5\u00b0",
            "a slash b and c at d plus e equals f percent number five degrees",
        ),
        ("I \U0001f600 you", "i grinning face you"),
        ("\U0001f600", "grinning face"),
        ("\u2764\ufe0f", "heavy black heart"),
        ("\U0001f468\u200d\U0001f469", "man woman"),
        ("a\u200d\U0001f600b", "a grinning face b"),
        ("x\U0001f600.", "x grinning face."),
        ("\u4e2d", "cjk unified ideograph four e two d"),
        ("\u00a7 \u2020", "section dagger"),
        ("tab\there\nnew\u00a0line", "tab here new line"),
        ("bell\x07", "bell"),
        ("\ue000", "character e zero zero zero"),
        ("*bold* _under_ ~x~ |p|", "bold under x p"),
        ("  keep outer spaces  ", " keep outer spaces "),
    ],
)
def test_small_vocab(text: str, expected: str) -> None:
    assert to_vocab(text, SMALL) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Chapter 12: Dr. Smith; \u00a35.", "chapter twelve dr smith pound five"),
        ("It's well-known.", "it's well-known"),
        ("Hello, world!", "hello world"),
    ],
)
def test_vocab_without_punctuation(text: str, expected: str) -> None:
    assert to_vocab(text, MMS_ENGLISH) == expected


def test_uppercase_kept_when_the_vocab_has_it() -> None:
    vocab = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .")
    assert to_vocab("Hello World. \u00c9t\u00e9", vocab) == "Hello World. Ete"


def test_other_case_used_when_only_one_case_is_known() -> None:
    assert to_vocab("abc", set("ABC")) == "ABC"


@pytest.mark.parametrize(
    "text,character,code_point,position",
    [
        ("ok \U0001f600", "\U0001f600", "U+1F600", 3),
        ("\u4e2d", "\u4e2d", "U+4E2D", 0),
        ("\u00e9t\u00e9 \u2020", "\u2020", "U+2020", 4),
    ],
)
def test_fail_mode_names_the_character(text: str, character: str, code_point: str, position: int) -> None:
    with pytest.raises(TextError) as error:
        to_vocab(text, SMALL, unknown="fail")
    message = str(error.value)
    assert repr(character) in message and code_point in message and f"position {position}" in message


def test_fail_mode_still_maps_what_has_an_equivalent() -> None:
    assert to_vocab("Caf\u00e9; 5!", SMALL, unknown="fail") == "cafe, five."


def test_unspellable_character_is_an_error_not_a_drop() -> None:
    with pytest.raises(TextError, match="U\\+0071"):
        to_vocab("q", set("ab "))


def test_unknown_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown"):
        to_vocab("a", SMALL, unknown="drop")  # type: ignore[arg-type]


def test_normalized_text_maps_fully() -> None:
    text = normalize("Chapter 12: Dr. Smith paid \u00a35 \u2014 \u201ccheap!\u201d \U0001f600")
    assert to_vocab(text, SMALL) == "chapter twelve, doctor smith paid five pounds - 'cheap.' grinning face"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_output_is_always_in_the_vocab(text: str) -> None:
    assert set(to_vocab(text, SMALL)) <= SMALL
    assert set(to_vocab(text, MMS_ENGLISH - {"<pad>", "<unk>"})) <= MMS_ENGLISH
