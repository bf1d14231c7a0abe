"""Chapter text for benchmarks: deterministic prose whose sentence lengths vary as a novel's do.

Padding, and so the cost of batching, depends on how sentence lengths spread, not on the words: lengths are
drawn from a log-normal around 15 words (a novel's median) with short dialogue lines mixed in, over a
fixed vocabulary the mms-tts-eng character set covers. Imports nothing but the standard library, so the
GPU check can use it.
"""

from __future__ import annotations

import math
import random

WORDS = (
    "the of and to a in that was he she it his her had with for as on at by but not from they all were be "
    "one there would their we what so up out if about who been into time could than then its only other "
    "over some now more very after old little before man house door night morning water window light road "
    "river ship harbour letter stranger hands eyes voice street garden table fire winter summer rain wind "
    "quiet slowly again nothing something never always already almost behind through across toward under "
    "remembered watched turned waited listened answered laughed walked opened closed carried counted found "
    "heard knew thought looked seemed wanted began kept left brought stood lay fell held broke wrote read "
    "mother father brother sister child friend captain keeper doctor teacher neighbour village city north "
    "south distant narrow heavy bright silent careful strange familiar ordinary certain sudden gentle cold"
).split()
SHORT_LINES = ("yes.", "no, not yet.", "why?", "come here.", "listen!", "who is it?", "i know.", "wait.")


def sentence(rng: random.Random) -> str:
    """One sentence: mostly narration of 4-60 words, sometimes a short line of dialogue."""
    if rng.random() < 0.12:
        return rng.choice(SHORT_LINES).capitalize()
    words = max(4, min(60, round(rng.lognormvariate(math.log(15), 0.55))))
    picked = [rng.choice(WORDS) for _ in range(words)]
    for position in range(6, words - 3, rng.randint(7, 12)):
        picked[position] += ","
    return " ".join(picked).capitalize() + rng.choice(".....?!")


def chapter_text(characters: int, seed: int = 0) -> str:
    """About `characters` characters of prose in paragraphs of 2-7 sentences."""
    rng = random.Random(seed)
    paragraphs, size = [], 0
    while size < characters:
        paragraph = " ".join(sentence(rng) for _ in range(rng.randint(2, 7)))
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)
