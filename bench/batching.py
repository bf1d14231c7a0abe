"""Rows per forward pass on CPU: padding, kernel time and audio-s per wall-s, by allocator and row order.

Each allocator runs in a fresh process (an LD_PRELOADed one must be there from exec): glibc as it comes,
glibc tuned by synth.allocator (what engines do at load), jemalloc and tcmalloc from Debian's packages.
In each process a random-weight VITS at facebook/mms-tts-eng's size speaks the same prose
(bench/corpus.py) one row per pass and in batches of 4, 8, 32 rows (under the 2400-character cap), taken
either in chapter order (`consecutive`, as before) or length-sorted within windows (`sorted`, as now);
configurations alternate over the repeats and the median is reported. Figures are ratios to one row per
pass in the same process, plus the kernel's share of CPU time and minor page faults per audio second.

Usage: python bench/batching.py [--chars 1500] [--repeats 3] [--threads N]
                                [--allocators glibc tuned jemalloc tcmalloc]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
PRELOAD = {"jemalloc": LIBDIR / "libjemalloc.so.2", "tcmalloc": LIBDIR / "libtcmalloc_minimal.so.4"}
# glibc as it comes is the before (chapter order, as main batched); tuned glibc is measured both ways.
CONFIGS = {
    "glibc": [(1, "consecutive"), (4, "consecutive"), (8, "consecutive"), (32, "consecutive")],
    "tuned": [(1, "consecutive")] + [(rows, order) for rows in (4, 8, 32) for order in ("consecutive", "sorted")],
    "jemalloc": [(1, "consecutive"), (8, "sorted"), (32, "sorted")],
    "tcmalloc": [(1, "consecutive"), (8, "sorted"), (32, "sorted")],
}


def child(model_dir: str, allocator: str, chars: int, repeats: int, configs: list[tuple[int, str]]) -> None:
    """In a fresh process: every configuration, interleaved `repeats` times; one JSON line each."""
    from bench.corpus import chapter_text
    from synth.allocator import tune_for_synthesis
    from synth.batching import padding_fraction, plan_windows, runs
    from synth.engines import load_engine
    from synth.text.chunk import chunk_text
    from synth.text.normalize import normalize

    engine = load_engine(model_dir, "cpu", tune_allocator=allocator == "tuned")
    tuned = tune_for_synthesis() if allocator == "tuned" else False
    texts = [engine.speakable(c.spoken) for c in chunk_text(normalize(chapter_text(chars)), 300)]
    lengths = [len(t) for t in texts]

    def plan(rows: int, order: str) -> list[tuple[int, ...]]:
        if order == "sorted":
            return [b for w in plan_windows(lengths, 2400, rows) for b in w.batches]
        return [tuple(range(a, b)) for a, b in runs(lengths, 2400, rows)]

    def run(batches: list[tuple[int, ...]]) -> dict[str, float]:
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        audio = sum(w.size for b in batches for w in engine.synthesize([texts[i] for i in b], seed=0))
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
        user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
        audio_s = audio / engine.sample_rate
        return {"audio_s_per_s": audio_s / wall, "kernel_share": system / max(1e-9, user + system),
                "kernel_s": system, "minor_faults_per_audio_s": (after.ru_minflt - before.ru_minflt) / audio_s}

    run(plan(8, "sorted")[:2])  # warm-up
    samples: dict[tuple[int, str], list[dict[str, float]]] = {c: [] for c in configs}
    for _ in range(repeats):
        for config in configs:
            samples[config].append(run(plan(*config)))
    base = statistics.median(s["audio_s_per_s"] for s in samples[(1, "consecutive")])
    for (rows, order), runs_ in samples.items():
        batches = plan(rows, order)
        rate = statistics.median(s["audio_s_per_s"] for s in runs_)
        print(json.dumps({
            "allocator": allocator, "mallopt_applied": tuned, "rows": rows, "order": order,
            "passes": len(batches), "mean_rows": round(len(texts) / len(batches), 1),
            "padding": round(padding_fraction(lengths, batches), 3),
            "audio_s_per_s": round(rate, 2), "vs_one_row": round(rate / base, 2),
            "kernel_share": round(statistics.median(s["kernel_share"] for s in runs_), 3),
            "kernel_s": round(statistics.median(s["kernel_s"] for s in runs_), 2),
            "minor_faults_per_audio_s": round(statistics.median(s["minor_faults_per_audio_s"] for s in runs_)),
            "range_vs_one_row": [round(min(s["audio_s_per_s"] for s in runs_) / base, 2),
                                 round(max(s["audio_s_per_s"] for s in runs_) / base, 2)],
        }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1500, help="characters of prose per pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch threads (OMP_NUM_THREADS) in each process; default: "
                        "torch's own (one per core). One thread is far steadier on a machine others load")
    parser.add_argument("--allocators", nargs="+", default=["glibc", "tuned", "jemalloc", "tcmalloc"],
                        choices=["glibc", "tuned", "jemalloc", "tcmalloc"])
    parser.add_argument("--child", nargs=3, metavar=("MODEL_DIR", "ALLOCATOR", "CONFIGS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        configs = [tuple(c) for c in json.loads(args.child[2])]
        child(args.child[0], args.child[1], args.chars, args.repeats, configs)  # type: ignore[arg-type]
        return

    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    from synth.engines.random_vits import build_random_vits

    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count(), "threads": args.threads}),
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = build_random_vits(Path(tmp) / "mms", size="mms")
        for allocator in args.allocators:
            if allocator in PRELOAD and not PRELOAD[allocator].exists():
                print(json.dumps({"allocator": allocator, "skipped": f"{PRELOAD[allocator]} is not installed "
                                  "(apt-get install libjemalloc2 libtcmalloc-minimal4)"}), flush=True)
                continue
            configs = CONFIGS[allocator]
            child_env = env | ({"LD_PRELOAD": str(PRELOAD[allocator])} if allocator in PRELOAD else {})
            command = [sys.executable, __file__, "--chars", str(args.chars), "--repeats", str(args.repeats),
                       "--child", str(model), allocator, json.dumps(configs)]
            subprocess.run(command, check=True, cwd=ROOT, env=child_env)
    print(json.dumps({"load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
