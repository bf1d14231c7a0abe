"""Make English text speakable by a character-level TTS model: unicode, numbers, abbreviations, layout.

Heuristics (each a deliberate, simple choice):
- Dashes: an en dash between digits is a range hyphen; any other en/em dash, horizontal bar or ASCII "--"
  becomes " - ", which reads as a pause and is a clause boundary for the chunker.
- Years: a bare four-digit integer 1100-2099 is read as a year ("nineteen eighty-four") unless the next word
  is a unit or currency word from UNIT_WORDS; below 2000 the year reading ("fifteen hundred") is also
  correct English for a quantity, so the heuristic is rarely wrong.
- Ranges: "A-B" of integers reads "A to B" when B > A, or when A is a year and B has two digits
  ("1990-95"); otherwise the hyphen stays ("3-2"). Phone-like "555-1234" is read as a range.
- "St." is "Saint" when the next word is capitalised and the previous word is not; otherwise "Street".
- Suffix abbreviations (etc., Inc., Jr., ... and "Street") keep their period when they seem to end a
  sentence (the next word is capitalised, or the text ends); titles (Mr., Dr., Saint, ...) never keep it,
  so the chunker does not split a sentence there.
- Integers of more than 15 digits, or with a leading zero, are read digit by digit ("007").
- Unicode format characters (category Cf: soft hyphen, zero-width joiners, BOM) and variation selectors
  are removed: they are formatting, not text. Emoji and other symbols stay for the vocab layer.
"""

import re
import unicodedata
from collections.abc import Callable

# fmt: off
CHARACTER_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": " - ", "\u2014": " - ", "\u2015": " - ", "\u2012": " - ", "\ufe58": " - ",
    "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2026": "...",
    "\t": " ", "\u2028": "\n", "\u2029": "\n\n",
}
CURRENCIES = {  # symbol: (unit, units, subunit, subunits); None: read decimals with "point"
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
UNIT_WORDS = frozenset(
    "dollars euros pounds cents pence yen rupees percent km kilometers kilometres m meters metres cm mm "
    "miles feet ft inches yards kg kilograms g grams lb lbs tons tonnes mph kph rpm hp calories "
    "watts volts bytes kb mb gb".split()
)
TITLES = {  # always followed by a name: the period goes
    "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Dr.": "Doctor", "Prof.": "Professor",
    "Mt.": "Mount", "Capt.": "Captain", "Gen.": "General", "Lt.": "Lieutenant", "Col.": "Colonel",
    "Sgt.": "Sergeant", "vs.": "versus", "e.g.": "for example", "i.e.": "that is", "approx.": "approximately",
}
SUFFIXES = {  # may end a sentence: the period stays when it does
    "Jr.": "Junior", "Sr.": "Senior", "etc.": "et cetera", "Inc.": "Incorporated", "Ltd.": "Limited",
    "Co.": "Company",
}
# fmt: on
SYMBOL_WORDS = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "%": " percent "}
DIGIT_WORDS = "zero one two three four five six seven eight nine".split()
MAX_SPOKEN_DIGITS = 15

_VARIATION_SELECTOR = re.compile(r"[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _variants(key: str) -> list[str]:
    return list(dict.fromkeys([key, key[0].upper() + key[1:], key.upper()]))


_ABBREVIATIONS = {  # every spelling: "Mr.", "MR."; "etc.", "Etc.", "ETC."
    variant: (key, word) for table in (TITLES, SUFFIXES) for key, word in table.items() for variant in _variants(key)
}
_ABBREVIATION = re.compile(  # not inside a word, and no letter right after the period
    r"(?<![^\W\d_])(?<!\.)(?:(?:No|NO|no)\.(?=\s*[0-9])|St\.|ST\.|"
    + "|".join(re.escape(k) for k in sorted(_ABBREVIATIONS, key=len, reverse=True))
    + r")(?![^\W\d_])"
)
_INT = r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+"
_NUMBER = re.compile(
    rf"(?P<cneg>-)?(?P<cur>[$£€¥₹]) ?(?P<camt>{_INT})(?P<cfrac>\.[0-9]+)?"
    r"(?: (?P<scale>thousand|million|billion|trillion)\b)?"
    r"|(?<![0-9:.,])(?P<hour>[0-9]{1,2}):(?P<minute>[0-5][0-9])(?![0-9]|:[0-9])"
    r"|(?<![0-9.,])(?P<low>[0-9]+)-(?P<high>[0-9]+)(?![0-9]|[.,:-][0-9])(?P<rpct> ?%)?"
    rf"|(?P<ord>{_INT})(?P<suffix>st|nd|rd|th|ST|ND|RD|TH)(?P<ords>s)?(?![A-Za-z])"
    rf"|(?P<neg>-)?(?P<int>{_INT})(?P<frac>\.[0-9]+)?(?P<pct> ?%)?(?P<plural>s(?![A-Za-z]))?"
    r"|\.(?P<dot>[0-9]+)"
)
_NEXT_CHARACTER = re.compile(r"\s*(\S?)")
_NEXT_WORD = re.compile(r" *([^\W\d_]*)")
_HASH_NUMBER = re.compile(r"#(?= ?[0-9])")
_SYMBOL = re.compile("[" + re.escape("".join(SYMBOL_WORDS)) + "]")


def normalize(text: str) -> str:
    """Return `text` with every digit, abbreviation and odd character turned into speakable English."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = _VARIATION_SELECTOR.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"(?<=[0-9])[\u2012\u2013](?=[0-9])", "-", text)
    text = "".join(CHARACTER_MAP.get(c, " " if c != "\n" and c.isspace() else c) for c in text)
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"-{2,}", " - ", text)
    text = _replace(_ABBREVIATION, _abbreviation, text)
    text = _replace(_HASH_NUMBER, lambda m: "number ", text)
    text = _replace(_NUMBER, _number, text)
    text = _SYMBOL.sub(lambda m: SYMBOL_WORDS[m.group()], text)
    return unicodedata.normalize("NFC", _layout(text))  # spelled digits can take a stray combining mark


def _layout(text: str) -> str:
    """Paragraphs are separated by exactly one blank line; single newlines are hard wraps."""
    text = re.sub(r" +", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{2,}", "\n\n", text)
    text = re.sub(r"(?<!\n)\n(?!\n)", " ", text)
    return text.strip(" \n")


def _replace(pattern: re.Pattern[str], spoken: Callable[[re.Match[str]], str], text: str) -> str:
    """Substitute matches, padding the words with spaces where they would touch a letter or digit."""
    out: list[str] = []
    last, previous = 0, ""
    for match in pattern.finditer(text):
        out.append(text[last : match.start()])
        words = spoken(match)
        if (out[-1][-1:] or previous).isalnum() and words[:1].isalnum():
            words = " " + words
        if text[match.end() : match.end() + 1].isalnum() and words[-1:].isalnum():
            words += " "
        out.append(words)
        last, previous = match.end(), words[-1:]
    out.append(text[last:])
    return "".join(out)


def _abbreviation(match: re.Match[str]) -> str:
    found, text = match.group(), match.string
    next_visible = _NEXT_CHARACTER.match(text, match.end())
    following = next_visible.group(1) if next_visible else ""
    capital_next = following.isupper()
    if found.lower() == "no.":
        word = "number"
    elif found.lower() == "st.":
        previous = text[max(0, match.start() - 80) : match.start()].rstrip(" ").rsplit(" ", 1)[-1]
        word = "saint" if capital_next and not previous[:1].isupper() else "street."
    else:
        key, word = _ABBREVIATIONS[found]
        word += "." if key in SUFFIXES else ""
    if word.endswith(".") and not (capital_next or not following):
        word = word[:-1]
    if found.isupper() and len(found) > 2:
        word = word.upper()
    elif found[0].isupper():
        word = word[0].upper() + word[1:]
    return word + " " if text[match.end() : match.end() + 1].isalnum() else word


def _number(m: re.Match[str]) -> str:
    if m["cur"]:
        return _currency(m)
    if m["hour"]:
        return _time(m["hour"], m["minute"])
    if m["low"]:
        return _range(m)
    if m["ord"]:
        return _ordinal(m["ord"], m["suffix"]) + ("s" if m["ords"] else "")
    if m["dot"]:
        return "point " + _digits(m["dot"])
    words = _decimal(m["int"], m["frac"], year_ok=not (m["pct"] or m["neg"]) and _unitless(m))
    if m["plural"] and not m["frac"]:
        words = _pluralize(words)
    elif m["plural"]:
        words += " s"
    if m["pct"]:
        words += " percent"
    if m["neg"]:
        before = m.string[m.start() - 1 : m.start()]
        words = ("-" if before.isalnum() else "minus ") + words
    return words


def _currency(m: re.Match[str]) -> str:
    unit, units, sub, subs = CURRENCIES[m["cur"]]
    sign = "minus " if m["cneg"] else ""
    amount, frac = m["camt"].replace(",", ""), m["cfrac"]
    if m["scale"]:
        return f"{sign}{_decimal(amount, frac)} {m['scale']} {units}"
    if frac and (sub is None or len(frac) > 3):
        return f"{sign}{_decimal(amount, frac)} {units}"
    whole, cents = int(amount), int(frac[1:].ljust(2, "0")) if frac else 0
    parts = []
    if whole or not cents:
        parts.append(f"{_integer(amount)} {unit if whole == 1 else units}")
    if cents:
        parts.append(f"{_cardinal(cents)} {sub if cents == 1 else subs}")
    return sign + " and ".join(parts)


def _time(hour: str, minute: str) -> str:
    if int(hour) > 24:
        return f"{_integer(hour)}:{_integer(minute)}"
    if minute == "00":
        return f"{_cardinal(int(hour))} o'clock"
    spoken_minute = "oh " + DIGIT_WORDS[int(minute[1])] if minute[0] == "0" else _cardinal(int(minute))
    return f"{_cardinal(int(hour))} {spoken_minute}"


def _range(m: re.Match[str]) -> str:
    low, high = m["low"], m["high"]
    low_words = _integer(low, year_ok=True)
    percent = " percent" if m["rpct"] else ""
    if len(high) == 2 and _is_year(low):
        return f"{low_words} to {_integer(high)}{percent}"
    high_words = _integer(high, year_ok=True)
    if _plain(low) and _plain(high) and int(high) > int(low):
        return f"{low_words} to {high_words}{percent}"
    return f"{low_words}-{high_words}{percent}"


def _ordinal(number: str, suffix: str) -> str:
    digits = number.replace(",", "")
    if not _plain(digits):
        return f"{_digits(digits)} {suffix.lower()}"
    return _clean(_num2words(int(digits), lang="en", to="ordinal"))


def _decimal(integer: str, fraction: str | None, year_ok: bool = False) -> str:
    words = _integer(integer, year_ok=year_ok and not fraction)
    return f"{words} point {_digits(fraction[1:])}" if fraction else words


def _integer(number: str, year_ok: bool = False) -> str:
    digits = number.replace(",", "")
    if not _plain(digits):
        return _digits(digits)
    if year_ok and number == digits and _is_year(digits):
        return _clean(_num2words(int(digits), lang="en", to="year"))
    return _cardinal(int(digits))


def _cardinal(number: int) -> str:
    return _clean(_num2words(number, lang="en"))


def _clean(words: str) -> str:
    """American style, and no commas: a comma inside a number would read as a pause."""
    return words.replace(",", "").replace(" and ", " ")


def _digits(digits: str) -> str:
    return " ".join(DIGIT_WORDS[int(d)] for d in digits)


def _plain(digits: str) -> bool:
    return len(digits) <= MAX_SPOKEN_DIGITS and (digits == "0" or not digits.startswith("0"))


def _is_year(digits: str) -> bool:
    return len(digits) == 4 and 1100 <= int(digits) <= 2099


def _unitless(m: re.Match[str]) -> bool:
    next_word = _NEXT_WORD.match(m.string, m.end())
    return next_word is None or next_word.group(1).lower() not in UNIT_WORDS


def _pluralize(words: str) -> str:
    if words.endswith("y"):
        return words[:-1] + "ies"
    return words + ("es" if words.endswith(("x", "s")) else "s")


def _num2words(number: int, **options: str) -> str:
    """num2words, imported on first use: the engines import this module on machines that have only torch,
    transformers and numpy (bench/gpu_check.py)."""
    from num2words import num2words

    return num2words(number, **options)
