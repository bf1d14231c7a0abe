"""Decoded peak and loudness of book files, run after run, with one encode (no check) vs the checked encode.

Each run synthesizes the sample book afresh in the offline Piper voice without a seed (its sampling noise
differs run to run), writes M4B and MP3, decodes them as a player would and prints the sample peak (dBFS)
and integrated loudness (LUFS) against AUDIOBOOK_PEAK_DB and AUDIOBOOK_BOOK_LUFS.
Usage: python bench/book_loudness.py [--runs 3] [--book samples/short.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--book", type=Path, default=ROOT / "samples" / "short.md")
    args = parser.parse_args()

    import synth.output.book as book_module
    from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
    from synth.engines import load_engine
    from synth.errors import EncodeError
    from synth.ingest import read_book
    from synth.output import BookOptions, ChapterAudio, write_book
    from synth.storage.local import LocalStorage

    options = BookOptions()
    voice = load_engine("piper", "cpu")
    book = read_book(args.book)
    checked_encodes = book_module.MAX_ENCODES
    print(f"{book.title}: {len(book.chapters)} chapters, voice {voice.name}; ceiling {options.peak_db:g} dBFS, "
          f"target {options.target_lufs:g} LUFS")
    print(f"{'run':>3} {'format':>6} {'encode':>8} {'encodes':>7} {'peak dBFS':>9} {'LUFS':>7} {'kept':>5}")
    with tempfile.TemporaryDirectory() as tmp:
        storage = LocalStorage(Path(tmp) / "store")
        for run in range(args.runs):
            chapters = []
            for i, chapter in enumerate(book.chapters):
                result = synthesize_chapter(ChapterJob(f"run{run}", f"c{i}", chapter.text, format="flac"), voice,
                                            storage, SynthOptions())
                chapters.append(ChapterAudio(Path(result["uri"].removeprefix("file://")), chapter.title))
            for fmt in ("m4b", "mp3"):
                for label, encodes in (("one", 1), ("checked", checked_encodes)):
                    book_module.MAX_ENCODES = encodes
                    target = Path(tmp) / f"{run}-{label}.{fmt}"
                    try:
                        used = write_book(chapters, target, fmt, options=options).encodes
                    except EncodeError:  # one encode may break the ceiling: that is what this shows
                        used = encodes
                    decoded = book_module.measure_decoded(target, options.lossy_sample_rate)
                    kept = decoded.peak_db <= options.peak_db and abs(decoded.lufs - options.target_lufs) <= 1
                    print(f"{run:>3} {fmt:>6} {label:>8} {used:>7} {decoded.peak_db:>9.2f} {decoded.lufs:>7.2f} "
                          f"{'yes' if kept else 'NO':>5}")
    book_module.MAX_ENCODES = checked_encodes


if __name__ == "__main__":
    main()
