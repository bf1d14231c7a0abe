"""Map text onto a tokenizer's character vocabulary without losing anything silently.

The VITS tokenizer drops characters it does not know; this layer rewrites each of them first, in order:
whitespace and control characters -> " "; format characters (Cf) and combining marks -> removed (they are
formatting and accents, not text); a letter of the other case; the NFKD decomposition ("é" -> "e",
"ﬁ" -> "fi", "²" -> "2"); digits -> words; SYMBOL_WORDS; PUNCTUATION_EQUIVALENTS (pure pause marks, tried
in order, " " last); anything else is spelled by its Unicode name ("😀" -> " grinning face ") or, with
unknown="fail", refused with a TextError naming the character, its code point and its position.
"""

import re
import unicodedata
from collections.abc import Collection
from typing import Literal

from synth.errors import TextError

# fmt: off
SYMBOL_WORDS = {  # symbols whose meaning is spoken; their Unicode names ("SOLIDUS") would not be
    "&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "%": " percent ", "#": " number ",
    "/": " slash ", "\\": " backslash ", "<": " less than ", ">": " greater than ", "°": " degrees ",
    "×": " times ", "÷": " divided by ", "⁄": " over ", "$": " dollar ", "£": " pound ", "€": " euro ",
    "¥": " yen ", "₹": " rupee ", "¢": " cent ", "§": " section ", "¶": " paragraph ",
}
PUNCTUATION_EQUIVALENTS = {  # pause marks: the first candidate whose characters are all in the vocab wins
    ";": (",", "."), ":": (",", "."), "!": (".",), "?": (".",), "…": ("...", "."), "¡": (), "¿": (),
    ".": (",",), ",": (".",), "'": (), '"': ("'",), "`": ("'",), "´": ("'",),
    "‘": ("'",), "’": ("'",), "‚": ("'",), "‛": ("'",), "“": ("'",), "”": ("'",), "„": ("'",),
    "«": ("'",), "»": ("'",), "‹": ("'",), "›": ("'",),
    "(": (",",), ")": (",",), "[": (",",), "]": (",",), "{": (",",), "}": (",",),
    "-": (), "‐": ("-",), "‑": ("-",), "‒": ("-",), "–": ("-",), "—": ("-",), "―": ("-",), "−": ("-",),
    "*": (), "_": (), "~": (), "|": (), "·": (), "•": (),
}
# fmt: on
PAUSE_CATEGORIES = frozenset({"Ps", "Pe", "Pi", "Pf", "Pd", "Pc"})  # brackets, quotes, dashes, connectors
MAX_DEPTH = 8  # rewriting takes a few rounds: "½" -> "1⁄2" -> " one over two "; cycles stop sooner

_DIGITS = re.compile(r"\d+")
_CODE_POINT_NAME = re.compile(r"(.*)-([0-9A-F]{4,6})")


def to_vocab(text: str, vocab: Collection[str], *, unknown: Literal["spell", "fail"] = "spell") -> str:
    """Return `text` rewritten so every character is in `vocab` (the tokenizer's single characters)."""
    if unknown not in ("spell", "fail"):
        raise ValueError(f"unknown must be 'spell' or 'fail', got {unknown!r}")
    characters = frozenset(token for token in vocab if len(token) == 1)
    mapper = _Mapper(characters, lowercase=not any(c.isupper() for c in characters), spell=unknown == "spell")
    result = mapper.text(text)
    if " " in characters:
        result = re.sub(" {2,}", " ", result)
        result = result.lstrip(" ") if not text[:1].isspace() else result
        result = result.rstrip(" ") if not text[-1:].isspace() else result
    for position, character in enumerate(result):
        if character not in characters:
            raise TextError(
                f"character {character!r} (U+{ord(character):04X}) at output position {position} "
                "is not in the vocabulary"
            )
    return result


class _Mapper:
    """Rewrites characters recursively; `origin` keeps the input character and position for error messages."""

    def __init__(self, vocab: frozenset[str], *, lowercase: bool, spell: bool) -> None:
        self.vocab, self.lowercase, self.spell = vocab, lowercase, spell
        self.spelling: set[str] = set()  # names being spelled: a name that needs itself cannot be spelled
        self.done: dict[str, str] = {}

    def text(self, text: str, origin: tuple[str, int] | None = None, depth: int = 0) -> str:
        out: list[str] = []
        position, previous = 0, ""
        while position < len(text):
            here = origin or (text[position], position)
            digits = _DIGITS.match(text, position)
            if digits and any(d not in self.vocab for d in digits.group()):
                piece = self.text(_spoken_number(digits.group()), here, depth + 1)
                position = digits.end()
            else:
                piece = self.character(text[position], here, depth)
                position += 1
            if depth == 0:
                piece = _fit(piece, previous, text[position : position + 1])
                previous = piece[-1:] or previous
            out.append(piece)
        return "".join(out)

    def character(self, c: str, origin: tuple[str, int], depth: int) -> str:
        if c in self.vocab:
            return c
        if c not in self.done:
            if depth > MAX_DEPTH or c in self.spelling:
                raise _refusal(origin, "cannot be spelled with the vocabulary")
            self.spelling.add(c)
            try:
                self.done[c] = self.rewrite(c, origin, depth)
            finally:
                self.spelling.discard(c)
        return self.done[c]

    def rewrite(self, c: str, origin: tuple[str, int], depth: int) -> str:
        category = unicodedata.category(c)
        if c.isspace() or category == "Cc":
            return " " if " " in self.vocab else ""
        if category in ("Cf", "Mn", "Me"):
            return ""
        for other_case in (c.lower(), c.upper()) if self.lowercase else (c.upper(), c.lower()):
            if other_case != c and all(o in self.vocab for o in other_case):
                return other_case
        decomposed = "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
        if decomposed and decomposed != c:
            return self.text(decomposed, origin, depth + 1)
        if c.lower() != c and self.lowercase:
            return self.text(c.lower(), origin, depth + 1)
        if c in SYMBOL_WORDS:
            return self.text(SYMBOL_WORDS[c], origin, depth + 1)
        if c in PUNCTUATION_EQUIVALENTS or category in PAUSE_CATEGORIES:
            for candidate in PUNCTUATION_EQUIVALENTS.get(c, ()):
                if all(p in self.vocab for p in candidate):
                    return candidate
            return " " if " " in self.vocab else ""
        if not self.spell:
            raise _refusal(origin, "is not in the vocabulary")
        return self.text(f" {_spoken_name(c)} ", origin, depth + 1)


def _fit(words: str, previous: str, following: str) -> str:
    """Keep the spaces around inserted words only where they would touch other words."""
    if not words.strip(" ") or not (words.startswith(" ") or words.endswith(" ")):
        return words
    left = " " if words.startswith(" ") and previous not in ("", " ") else ""
    touching = following and not following.isspace() and unicodedata.category(following)[0] != "P"
    return left + words.strip(" ") + (" " if words.endswith(" ") and touching else "")


def _spoken_number(digits: str) -> str:
    values = "".join(str(unicodedata.decimal(d)) for d in digits)
    if len(values) > 15 or (len(values) > 1 and values.startswith("0")):
        return " " + " ".join(_num2words(int(v), lang="en") for v in values) + " "
    return " " + _num2words(int(values), lang="en").replace(",", "").replace(" and ", " ") + " "


def _spoken_name(c: str) -> str:
    """Unicode name in lowercase words; a character without one is named by its code point digits."""
    name = unicodedata.name(c, "")
    if not name:
        return "character " + " ".join(f"{ord(c):04x}")
    derived = _CODE_POINT_NAME.fullmatch(name)  # "CJK UNIFIED IDEOGRAPH-4E2D": read the hex digit by digit
    if derived:
        name = derived.group(1) + " " + " ".join(derived.group(2))
    return name.lower()


def _refusal(origin: tuple[str, int], why: str) -> TextError:
    character, position = origin
    return TextError(f"character {character!r} (U+{ord(character):04X}) at position {position} {why}")


def _num2words(number: int, **options: str) -> str:
    """num2words, imported on first use: the engines import this module on machines that have only torch,
    transformers and numpy (bench/gpu_check.py)."""
    from num2words import num2words

    return num2words(number, **options)
