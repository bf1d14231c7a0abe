"""The GPU check: throughput and cost per audiobook hour of a VITS at facebook/mms-tts-eng's size, one JSON line.

Runs from a bare checkout on a machine with torch, transformers and numpy only (bench/gpu_check.sh installs
them where missing): random weights at the real config size, the product's engine (fp16 on CUDA), its
window planner and its model loop with post-processing on a stage beside the model. Prints one line:
device, audio-s per wall-s for rows 1/8/32/64 (median of repeats, warm-up first, synchronized timings),
batched vs one row per pass, the model-busy fraction of the chapter loop, peak GPU memory, and USD per
audiobook hour at the prices of RUNPOD_GPU_TYPES. `--device cpu --quick` runs the same code on the tiny
model in seconds (the test suite does that).

Usage: bash bench/gpu_check.sh [--device cuda|cpu] [--quick] [--prices 'NVIDIA H200=3.59,...']
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Secure-cloud USD/h the simulator plans with (scaler/sim); pass --prices for today's list or other types.
DEFAULT_PRICES = {"NVIDIA RTX A4000": 0.34, "NVIDIA GeForce RTX 3090": 0.46}
#: Longest row the product sends (AUDIOBOOK_MAX_CHUNK_CHARS): batches here are limited by rows, not characters.
MAX_CHUNK_CHARS = 300


def gpu_types() -> list[str]:
    """RUNPOD_GPU_TYPES from the environment, else its default in settings.py when pydantic is there."""
    raw = os.environ.get("RUNPOD_GPU_TYPES")
    if raw is None:
        try:
            from settings import Settings

            raw = str(Settings.model_fields["runpod_gpu_types"].default)
        except ImportError:  # a bare GPU machine has no pydantic-settings
            raw = ",".join(DEFAULT_PRICES)
    return [t.strip() for t in raw.split(",") if t.strip()]


def parse_prices(text: str | None) -> dict[str, float]:
    prices = dict(DEFAULT_PRICES)
    for item in (text or "").split(","):
        if item.strip():
            name, _, usd = item.rpartition("=")
            prices[name.strip()] = float(usd)
    return prices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="tiny model and text: a smoke run for CPU")
    parser.add_argument("--rows", type=int, nargs="+", help="rows per pass to measure (default 1 8 32 64)")
    parser.add_argument("--chars", type=int, help="characters of prose per measurement")
    parser.add_argument("--repeats", type=int, help="timed repeats per row count (median reported)")
    parser.add_argument("--prices", help="'GPU type=USD per hour,...' added to the built-in list")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    print(json.dumps(check(args)), flush=True)


def check(args: argparse.Namespace) -> dict:
    import torch
    from transformers.utils import logging as hf_logging

    from bench.corpus import chapter_text
    from synth.batching import padding_fraction, plan_windows
    from synth.engines.random_vits import build_random_vits
    from synth.engines.vits import VitsEngine
    from synth.text.chunk import chunk_text
    from synth.text.normalize import normalize

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    cuda = args.device == "cuda"
    rows_list = args.rows or ([1, 2, 4] if args.quick else [1, 8, 32, 64])
    chars = args.chars or (400 if args.quick else 20_000)
    repeats = args.repeats or (1 if args.quick else 3)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_random_vits(Path(tmp) / "vits", size="tiny" if args.quick else "mms")
        engine = VitsEngine.load(str(model_dir), args.device)
    texts = [engine.speakable(c.spoken) for c in chunk_text(normalize(chapter_text(chars)), MAX_CHUNK_CHARS)]
    lengths = [len(t) for t in texts]

    def batches(rows: int) -> list[tuple[int, ...]]:
        return [b for w in plan_windows(lengths, MAX_CHUNK_CHARS * rows, rows) for b in w.batches]

    def timed(rows: int) -> float:
        """Audio-s per wall-s of every batch, back to back."""
        sync()
        start = time.perf_counter()
        audio = sum(w.size for b in batches(rows) for w in engine.synthesize([texts[i] for i in b], seed=0))
        sync()
        return audio / engine.sample_rate / (time.perf_counter() - start)

    per_rows: dict[str, dict[str, float]] = {}
    for rows in rows_list:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        engine.synthesize([texts[i] for i in batches(rows)[0]], seed=0)  # warm-up at this shape
        rates = [timed(rows) for _ in range(repeats)]
        per_rows[str(rows)] = {
            "audio_s_per_s": round(statistics.median(rates), 1),
            "padding": round(padding_fraction(lengths, batches(rows)), 3),
            "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
        }
    sequential = per_rows[str(rows_list[0])]["audio_s_per_s"]
    best_rows = max(rows_list, key=lambda r: per_rows[str(r)]["audio_s_per_s"])
    best = per_rows[str(best_rows)]["audio_s_per_s"]
    loop = chapter_loop(engine, texts, lengths, best_rows, sync)
    prices = parse_prices(args.prices)
    rate = loop["audio_s_per_s"]
    device_name = torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)"
    costs = {name: {"usd_per_hour": prices.get(name),
                    "usd_per_audiobook_hour": round(prices[name] / rate, 5) if name in prices else None}
             for name in dict.fromkeys(gpu_types() + ([device_name] if device_name in prices else []))}
    return {
        "device": device_name, "dtype": str(engine.model.dtype).removeprefix("torch."),
        "model": "tiny random VITS" if args.quick else "random VITS at mms-tts-eng size",
        "params_m": round(sum(p.numel() for p in engine.model.parameters()) / 1e6, 1),
        "text_chars": sum(lengths), "rows": per_rows,
        "batched_vs_sequential": round(best / sequential, 2), "best_rows": best_rows,
        "chapter_loop": loop,
        "peak_gpu_mib": max((r["peak_gpu_mib"] or 0) for r in per_rows.values()) if cuda else None,
        "usd_per_audiobook_hour": costs,
        "cost_note": "price / audio-s per wall-s of the chapter loop on the measured device; for other types "
                     "it assumes they were as fast",
        "versions": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "wall_s": round(time.perf_counter() - started, 1),
    }


def chapter_loop(engine, texts: list[str], lengths: list[int], rows: int,  # noqa: ANN001 - a VitsEngine
                 sync: Callable[[], None]) -> dict:
    """The chapter's model loop (synth.render) with trims, fades and pauses on a stage, writing float32 audio
    to a file as a chapter does: how much of the wall time the model is busy."""
    import numpy as np

    from synth.batching import plan_windows
    from synth.pipeline import Stage
    from synth.render import WindowAssembler, render

    windows = plan_windows(lengths, MAX_CHUNK_CHARS * rows, rows)
    written = 0
    with tempfile.TemporaryFile() as raw:
        def sink(_window: object, blocks: list[np.ndarray]) -> None:
            nonlocal written
            for block in blocks:
                block.astype(np.float32).tofile(raw)
                written += block.size

        assembler = WindowAssembler(engine.sample_rate, [0.4] * len(texts), 0.75, sink)
        sync()
        start = time.perf_counter()
        with Stage("check-post", backlog=8) as post:
            stats = render(engine, texts, windows, post, assembler, seed=0)
        sync()
        wall = time.perf_counter() - start
    audio_s = written / engine.sample_rate
    return {"rows": rows, "audio_s": round(audio_s, 1), "wall_s": round(wall, 2),
            "audio_s_per_s": round(audio_s / wall, 1), "model_busy": round(stats.model_s / wall, 3),
            "post_busy": round(post.busy_s / wall, 3),
            # what SCALER_SECONDS_PER_CHAR means: worker seconds per character of chapter text
            "seconds_per_char": round(wall / sum(lengths), 7)}


if __name__ == "__main__":
    main()
