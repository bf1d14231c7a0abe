"""normalize from tables (numbers, abbreviations, unicode, layout); idempotence by hypothesis."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.text import normalize


@pytest.mark.parametrize(
    "text,expected",
    [
        ("He has 42 apples.", "He has forty-two apples."),
        ("0", "zero"),
        ("Pi is 3.14.", "Pi is three point one four."),
        ("1,234,567 people", "one million two hundred thirty-four thousand five hundred sixty-seven people"),
        ("-5 degrees", "minus five degrees"),
        ("(-2.5)", "(minus two point five)"),
        ("50%", "fifty percent"),
        ("-2.5 %", "minus two point five percent"),
        ("10-20%", "ten to twenty percent"),
        ("a 105 b", "a one hundred five b"),
        ("007", "zero zero seven"),
        ("1234567890123456", "one two three four five six seven eight nine zero one two three four five six"),
        ("MP3 and 3D", "MP three and three D"),
        ("COVID-19", "COVID-nineteen"),
        ("v1.2.3", "v one point two point three"),
        (".5 of it", "point five of it"),
        ("1,2,3", "one,two,three"),
        ("5%5", "five percent five"),
        ("#5", "number five"),
        ("1+1=2", "one plus one equals two"),
        ("at 10:30", "at ten thirty"),
        ("at 10:05", "at ten oh five"),
        ("at 9:00", "at nine o'clock"),
        ("3-2 win", "three-two win"),
    ],
)
def test_numbers(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1st", "first"),
        ("22nd", "twenty-second"),
        ("103rd", "one hundred third"),
        ("4th of July", "fourth of July"),
        ("the 1,000th time", "the one thousandth time"),
    ],
)
def test_ordinals(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("in 1984", "in nineteen eighty-four"),
        ("2005", "two thousand five"),
        ("in 2000", "in two thousand"),
        ("1100", "eleven hundred"),
        ("2099", "twenty ninety-nine"),
        ("1099", "one thousand ninety-nine"),
        ("2100", "two thousand one hundred"),
        ("the 1990s", "the nineteen nineties"),
        ("1990-1995", "nineteen ninety to nineteen ninety-five"),
        ("1990\u20131995", "nineteen ninety to nineteen ninety-five"),
        ("1990-95", "nineteen ninety to ninety-five"),
        ("1984 km", "one thousand nine hundred eighty-four km"),
        ("1,984", "one thousand nine hundred eighty-four"),
    ],
)
def test_years(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("$5", "five dollars"),
        ("$1", "one dollar"),
        ("$5.50", "five dollars and fifty cents"),
        ("$5.5", "five dollars and fifty cents"),
        ("$1.01", "one dollar and one cent"),
        ("$0.50", "fifty cents"),
        ("$5.00", "five dollars"),
        ("$1,000", "one thousand dollars"),
        ("$1.5 million", "one point five million dollars"),
        ("-$3", "minus three dollars"),
        ("£3", "three pounds"),
        ("£2.01", "two pounds and one penny"),
        ("€10", "ten euros"),
        ("¥500", "five hundred yen"),
        ("¥1.5", "one point five yen"),
        ("$2.125", "two point one two five dollars"),
        ("It cost $5.", "It cost five dollars."),
    ],
)
def test_currency(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Mr. Smith met Dr. Jones.", "Mister Smith met Doctor Jones."),
        (
            "Mrs. Ms. Prof. Capt. Gen. Lt. Col. Sgt. Mt. X",
            "Missus Miz Professor Captain General Lieutenant Colonel Sergeant Mount X",
        ),
        ("MR. SMITH", "MISTER SMITH"),
        ("St. Paul", "Saint Paul"),
        ("on St. Mary's day", "on Saint Mary's day"),
        ("Baker St. is long", "Baker Street is long"),
        ("Baker St. Then he left", "Baker Street. Then he left"),
        ("apples, pears, etc. and more", "apples, pears, et cetera and more"),
        ("apples, pears, etc. Then", "apples, pears, et cetera. Then"),
        ("apples, pears, etc.", "apples, pears, et cetera."),
        ("Acme Inc. makes Co. products", "Acme Incorporated makes Company products"),
        ("Acme Ltd.", "Acme Limited."),
        ("John Smith Jr. and Sr. Bob", "John Smith Junior and Senior. Bob"),
        ("cats vs. dogs", "cats versus dogs"),
        ("fruit, e.g. apples, i.e. food", "fruit, for example apples, that is food"),
        ("approx. 5", "approximately five"),
        ("No. 5", "Number five"),
        ("no. 7", "number seven"),
        ("No. I won't", "No. I won't"),
        ("Dr.Who", "Dr.Who"),
        ("Tom & Jerry", "Tom and Jerry"),
        ("me@example", "me at example"),
        ("C++", "C plus plus"),
        ("a = b", "a equals b"),
        ("100 %", "one hundred percent"),
        ("% sign", "percent sign"),
        ("#hashtag", "#hashtag"),
    ],
)
def test_abbreviations_and_symbols(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("\u201cHi,\u201d she said. \u2018Yes.\u2019", "\"Hi,\" she said. 'Yes.'"),
        ("\u00abbonjour\u00bb", '"bonjour"'),
        ("wait\u2014what", "wait - what"),
        ("wait \u2013 what", "wait - what"),
        ("wait\u2015what", "wait - what"),
        ("wait--what", "wait - what"),
        ("well\u2010known", "well-known"),
        ("\u22125", "minus five"),
        ("so\u2026", "so..."),
        ("a\u00a0b\u2009c\u3000d", "a b c d"),
        ("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth"),
        ("\ufeffBOM", "BOM"),
        ("cafe\u0301", "caf\u00e9"),
        ("bell\x07here\x85too", "bell here too"),
    ],
)
def test_unicode(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("one\r\ntwo\rthree", "one two three"),
        ("hard\nwrapped\nlines", "hard wrapped lines"),
        ("first\n\nsecond", "first\n\nsecond"),
        ("first\n\n\n\n\nsecond", "first\n\nsecond"),
        ("first  \n \n\t \nsecond", "first\n\nsecond"),
        ("a\tb   c", "a b c"),
        ("trailing   \nspaces", "trailing spaces"),
        ("  \n\n leading and trailing \n\n ", "leading and trailing"),
        ("line\u2028sep\u2029para", "line sep\n\npara"),
        ("", ""),
        (" \n\t ", ""),
    ],
)
def test_whitespace_and_paragraphs(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("I \U0001f600 you", "I \U0001f600 you"),
        ("thumbs \U0001f44d\U0001f3fd", "thumbs \U0001f44d\U0001f3fd"),
        ("heart \u2764\ufe0f", "heart \u2764"),
        ("family \U0001f468\u200d\U0001f469\u200d\U0001f467", "family \U0001f468\U0001f469\U0001f467"),
        ("\u4e2d\u6587 \u2603 \u00a7 \u2020", "\u4e2d\u6587 \u2603 \u00a7 \u2020"),
    ],
)
def test_symbols_left_for_the_vocab_layer(text: str, expected: str) -> None:
    assert normalize(text) == expected


_TRICKY = st.sampled_from(
    list("0123456789.,-:%$£€¥#&@+=stndrh \n\t\r\u2013\u2014\u00ad\u0301\u200d\ufe0fAaeé'\"“”…😀")
    + ["Mr.", "St.", "No.", "etc.", "e.g.", "Dr.", " - ", "--", "1990", "\n\n", "Inc."]
)
TEXTS = st.text() | st.lists(_TRICKY, max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_normalize_is_idempotent_and_leaves_no_digits(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert not re.search(r"[0-9]", once)
    assert not re.search(r" {2}| \n|\n | $|^ |\n{3}", once)


_PLAIN = st.text(
    st.characters(categories=["L", "Zs", "So"]) | st.sampled_from(list(",;!?'\"()")), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(_PLAIN)
def test_letters_and_symbols_survive(text: str) -> None:
    """Without digits, periods or expandable symbols, every letter and symbol comes through in order."""

    def kept(s: str) -> list[str]:
        return [
            c for c in unicodedata.normalize("NFC", s) if unicodedata.category(c)[0] in "LS" or c in ",;!?()"
        ]

    assert kept(normalize(text)) == kept(text)
