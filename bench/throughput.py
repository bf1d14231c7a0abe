"""Synthesis throughput and memory, as ratios within one run (these machines are noisy).

Prints audio-seconds per wall-second for one sentence per forward pass vs batched passes, on a
random-weight VITS at facebook/mms-tts-eng's config size, and the peak RSS of a short chapter vs a
20x longer one (each in a fresh process). Usage: python bench/throughput.py [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SENTENCES = [
    "The ship left the harbour at dawn, and nobody on the pier waved goodbye.",
    "She counted the coins twice before she trusted the number.",
    "Rain fell all night.",
    "By the time the letter arrived, the house had already been sold to a stranger from the north.",
    "He laughed, though nothing about the joke was funny.",
    "Somewhere below deck a dog was barking at the sound of the engines.",
]


def chapter_text(sentences: int) -> str:
    parts = [SENTENCES[i % len(SENTENCES)] for i in range(sentences)]
    return "\n\n".join(" ".join(parts[i:i + 5]) for i in range(0, len(parts), 5))


def throughput(model_dir: Path, device: str, sentences: int, repeats: int, rows: int) -> dict:
    import torch

    from synth.batching import plan_windows
    from synth.engines import load_engine
    from synth.text.chunk import chunk_text
    from synth.text.normalize import normalize

    engine = load_engine(str(model_dir), device)
    chunks = chunk_text(normalize(chapter_text(sentences)), 300)
    texts = [engine.speakable(c.spoken) for c in chunks]
    plan = [b for w in plan_windows([len(t) for t in texts], 2400, rows) for b in w.batches]

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def run(groups: list[list[str]]) -> tuple[float, float]:
        audio = 0
        sync()
        start = time.perf_counter()
        for group in groups:
            audio += sum(w.size for w in engine.synthesize(group, seed=0))
        sync()
        return audio / engine.sample_rate, time.perf_counter() - start

    sequential = [[t] for t in texts]
    batched = [[texts[i] for i in rows_] for rows_ in plan]
    run(batched[:1])  # warm-up
    results = {"sequential": [], "batched": []}
    for _ in range(repeats):  # interleave so drift hits both alike
        for name, groups in (("sequential", sequential), ("batched", batched)):
            audio_s, wall_s = run(groups)
            results[name].append(audio_s / wall_s)
    best = {k: max(v) for k, v in results.items()}
    return {"device": device, "rows_per_batch": rows, "sentences": len(texts), "batches": len(batched),
            "sequential_audio_s_per_s": round(best["sequential"], 2),
            "batched_audio_s_per_s": round(best["batched"], 2),
            "batched_speedup": round(best["batched"] / best["sequential"], 2)}


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). ru_maxrss would do, but Linux carries it across exec from the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_child(model_dir: str, sentences: int, device: str) -> None:
    """Runs in a fresh process: peak RSS after loading the model, then after one chapter."""
    from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
    from synth.engines import load_engine
    from synth.storage import open_storage

    engine = load_engine(model_dir, device)
    engine.synthesize(["warm up."], seed=0)
    loaded = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = synthesize_chapter(ChapterJob("bench", "c", chapter_text(sentences), seed=0), engine,
                                    open_storage(tmp), SynthOptions(max_batch_size=engine.batch_rows))
    peak = peak_rss_mb()
    print(json.dumps({"sentences": sentences, "audio_s": result["duration_s"],
                      "wall_s": round(time.perf_counter() - start, 2), "rss_loaded_mb": round(loaded, 1),
                      "rss_peak_mb": round(peak, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--sentences", type=int, default=48, help="sentences in the throughput text")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 32], help="rows per batched pass to try")
    parser.add_argument("--rss-sentences", type=int, default=15, help="sentences in the short chapter")
    parser.add_argument("--rss-model", default="tiny", choices=["tiny", "mms"],
                        help="model for the memory run (tiny keeps the 20x chapter quick on a CPU)")
    parser.add_argument("--rss-child", nargs=2, metavar=("MODEL_DIR", "SENTENCES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]), args.device)
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    from synth.engines.random_vits import build_random_vits

    hf_logging.disable_progress_bar()

    with tempfile.TemporaryDirectory() as tmp:
        mms = build_random_vits(Path(tmp) / "mms", size="mms")
        for rows in args.rows:
            print(json.dumps({"throughput": throughput(mms, args.device, args.sentences, args.repeats, rows)}),
                  flush=True)
        rss_dir = mms if args.rss_model == "mms" else build_random_vits(Path(tmp) / "tiny")
        rows = []
        for n in (args.rss_sentences, args.rss_sentences * 20):
            command = [sys.executable, __file__, "--device", args.device, "--rss-child", str(rss_dir), str(n)]
            out = subprocess.run(command,
                                 capture_output=True, text=True, check=True, cwd=ROOT,
                                 env=os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"})
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        short, long = rows
        short_growth = short["rss_peak_mb"] - short["rss_loaded_mb"]
        growth = (long["rss_peak_mb"] - long["rss_loaded_mb"]) / max(1e-9, short_growth)
        print(json.dumps({"memory": {"model": args.rss_model, "short": short, "long_20x": long,
                                     "peak_ratio_long_vs_short": round(long["rss_peak_mb"] / short["rss_peak_mb"], 3),
                                     "growth_over_model_ratio": round(growth, 2)}}))


if __name__ == "__main__":
    main()
