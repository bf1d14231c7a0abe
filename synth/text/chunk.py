"""Cut normalised text into bounded chunks for the model, accounting for every character.

Sentence rule: a run of ".", "!", "?" or "…" (plus closing quotes/brackets) followed by whitespace or the
end of the paragraph ends a sentence, except (a) a single "." right after a one-letter capital word
(initials such as "J. R. R. Tolkien"; not "I") and (b) when the next word starts with a lowercase letter
("I was... thinking"). A sentence longer than max_chars splits at clause boundaries (, ; : and a
pause mark left by the sentence rule, or " - "), then at whitespace, then hard-splits a run without spaces.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from synth.errors import TextError

Span = tuple[int, int]

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<![.!?\u2026])[.!?\u2026]+[\"')\]\u201d\u2019]*(?=\s|\Z)")
_CLAUSE_END = re.compile(r"(?<![,;:.!?\u2026])[,;:.!?\u2026]+[\"')\]\u201d\u2019]*(?=\s)|(?<=\s)-(?=\s)")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    """One model call's text; `text` keeps the trailing whitespace so the chunks join back exactly."""

    text: str
    start: int
    paragraph_end: bool
    sentence_end: bool

    @property
    def spoken(self) -> str:
        return self.text.strip()

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def chunk_text(normalized: str, max_chars: int) -> list[Chunk]:
    """Split into chunks of at most `max_chars` spoken characters whose texts join back to the input."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    pieces: list[tuple[int, int, bool, bool]] = []  # content start, end, paragraph_end, sentence_end
    for paragraph in _paragraphs(normalized):
        sentences = _sentences(normalized, paragraph)
        for sentence_index, sentence in enumerate(sentences):
            spans = _split(normalized, sentence, max_chars)
            for span_index, (start, end) in enumerate(spans):
                last_span = span_index == len(spans) - 1
                last_sentence = sentence_index == len(sentences) - 1
                pieces.append((start, end, last_span and last_sentence, last_span))
    if not pieces:
        raise TextError("text has nothing to speak")
    # Each chunk runs from its content to the next chunk's content, so whitespace goes with the chunk before;
    # whitespace before the first content goes with the first chunk.
    starts = [0] + [start for start, _, _, _ in pieces[1:]] + [len(normalized)]
    chunks = [
        Chunk(normalized[starts[i] : starts[i + 1]], starts[i], paragraph_end, sentence_end)
        for i, (_, _, paragraph_end, sentence_end) in enumerate(pieces)
    ]
    _check(normalized, chunks, max_chars)
    return chunks


def sentence_count(chunks: Sequence[Chunk]) -> int:
    """Number of sentences: chunks that end one (a paragraph's last chunk always does)."""
    return sum(chunk.sentence_end for chunk in chunks)


def _check(normalized: str, chunks: list[Chunk], max_chars: int) -> None:
    if "".join(chunk.text for chunk in chunks) != normalized:
        raise TextError("chunks do not join back to the text")
    for chunk in chunks:
        if not chunk.spoken or len(chunk.spoken) > max_chars:
            raise TextError(f"chunk at offset {chunk.start} has {len(chunk.spoken)} spoken characters")


def _trim(text: str, start: int, end: int) -> Span:
    """Shrink [start, end) to its non-whitespace content (empty when there is none)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _paragraphs(text: str) -> list[Span]:
    bounds = [0] + [i for m in _PARAGRAPH_BREAK.finditer(text) for i in m.span()] + [len(text)]
    spans = (_trim(text, bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2))
    return [span for span in spans if span[0] < span[1]]


def _sentences(text: str, paragraph: Span) -> list[Span]:
    start, end = paragraph
    sentences: list[Span] = []
    for match in _SENTENCE_END.finditer(text, start, end):
        next_start, _ = _trim(text, match.end(), end)
        if next_start < end and text[next_start].islower():
            continue
        if match.group() == "." and _is_initial(text, start, match.start()):
            continue
        sentences.append((start, match.end()))
        start = next_start
    if start < end:
        sentences.append((start, end))
    return sentences


def _is_initial(text: str, sentence_start: int, period: int) -> bool:
    """True for the period of "J." in "J. R. R. Tolkien": a one-letter capital word other than "I"."""
    letter = period - 1
    return (
        letter >= sentence_start
        and text[letter].isupper()
        and text[letter] != "I"
        and (letter == sentence_start or not text[letter - 1].isalnum())
    )


def _split(text: str, span: Span, max_chars: int) -> list[Span]:
    """Bounded pieces of one sentence, preferring clause boundaries over word boundaries over hard cuts."""
    start, end = span
    if end - start <= max_chars:
        return [span]
    for segments in (_clauses(text, span), [m.span() for m in _WORD.finditer(text, start, end)]):
        if len(segments) > 1:
            atoms = [piece for segment in segments for piece in _split(text, segment, max_chars)]
            return _pack(atoms, max_chars)
    count = math.ceil((end - start) / max_chars)
    cuts = [start + (end - start) * i // count for i in range(count + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(count)]


def _clauses(text: str, span: Span) -> list[Span]:
    start, end = span
    cuts = [start] + [m.end() for m in _CLAUSE_END.finditer(text, start, end)] + [end]
    trimmed = (_trim(text, cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1))
    return [piece for piece in trimmed if piece[0] < piece[1]]


def _pack(atoms: list[Span], max_chars: int) -> list[Span]:
    """Join consecutive atoms into pieces <= max_chars: as few as greedy filling gives, but balanced."""
    fewest = _fill(atoms, max_chars)
    balanced = _fill(atoms, max_chars, pieces=len(fewest))
    return balanced if len(balanced) <= len(fewest) else fewest


def _fill(atoms: list[Span], max_chars: int, pieces: int = 0) -> list[Span]:
    """Greedy filling; with `pieces`, each piece stops nearest its fair share of the length left."""
    result: list[Span] = []
    first = 0
    while first < len(atoms):
        pieces_left = pieces - len(result)
        target = (atoms[-1][1] - atoms[first][0]) / pieces_left if pieces_left > 0 else max_chars
        last = first
        while last + 1 < len(atoms):
            length = atoms[last][1] - atoms[first][0]
            longer = atoms[last + 1][1] - atoms[first][0]
            if longer > max_chars or length >= target or longer - target >= target - length:
                break
            last += 1
        result.append((atoms[first][0], atoms[last][1]))
        first = last + 1
    return result
