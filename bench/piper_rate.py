"""The offline Piper voice through the chapter pipeline against the `piper` command line, on the same text.

The command line (`python -m piper -i text -f out.wav`, ONNX Runtime's default session) is timed as a
subprocess; its start-up and voice load are taken off by timing it once more on a one-word file. The chapter
pipeline (synthesize_chapter: normalise, chunk, phonemize, model, trims, pauses, WAV, storage) runs in this
process with the engine's ONNX Runtime session as shipped (no spinning, one thread per core) and with
variants: spinning on (ONNX Runtime's default, as before), and 1 or 2 threads. Runs alternate over the
repeats; medians. `speed_vs_cli` > 1 means the same text was finished faster than `piper` itself did it.

Usage: python bench/piper_rate.py [--chars 2500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"shipped": {}, "spinning_on": {"spinning": True}, "threads_1": {"threads": 1},
            "threads_2": {"threads": 2}}


def cli_seconds(onnx: Path, text_file: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "piper", "-m", str(onnx), "-i", str(text_file), "-f", str(out)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import soundfile as sf

    from bench.corpus import chapter_text
    from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
    from synth.engines.piper import PiperEngine, voice_files
    from synth.storage.local import LocalStorage

    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count()}), flush=True)
    text = chapter_text(args.chars, seed=1)
    _, onnx, _ = voice_files("piper")
    engines = {name: PiperEngine.load("piper", "cpu", **options) for name, options in VARIANTS.items()}
    times: dict[str, list[float]] = {"cli": [], **{name: [] for name in engines}}
    model: dict[str, list[float]] = {name: [] for name in engines}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "text.txt").write_text(text.replace("\n\n", "\n"))
        (work / "word.txt").write_text("Hello.\n")
        cli_seconds(onnx, work / "word.txt", work / "warm.wav")  # page cache warm
        for repeat in range(args.repeats):
            load = cli_seconds(onnx, work / "word.txt", work / "word.wav")
            times["cli"].append(cli_seconds(onnx, work / "text.txt", work / "cli.wav") - load)
            for name, engine in engines.items():
                job = ChapterJob("bench", f"{name}-{repeat}", text, seed=1)
                result = synthesize_chapter(job, engine, LocalStorage(work / "store"), SynthOptions())
                times[name].append(result["synth_seconds"])
                model[name].append(result["model_seconds"] / result["synth_seconds"])
        cli_audio_s = sf.info(str(work / "cli.wav")).duration
    cli = statistics.median(times["cli"])
    print(json.dumps({"text_chars": len(text), "cli_synthesis_s": round(cli, 2),
                      "cli_audio_s": round(cli_audio_s, 1), "cli_audio_s_per_s": round(cli_audio_s / cli, 2)}))
    for name in engines:
        seconds = statistics.median(times[name])
        print(json.dumps({"variant": name, "options": VARIANTS[name], "chapter_s": round(seconds, 2),
                          "speed_vs_cli": round(cli / seconds, 2),
                          "range": [round(cli / max(times[name]), 2), round(cli / min(times[name]), 2)],
                          "model_share": round(statistics.median(model[name]), 3)}), flush=True)
    print(json.dumps({"load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
