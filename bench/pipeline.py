"""How much of a chapter's wall time the model is busy: the forward passes against everything around them.

Each run is a fresh process that synthesizes one chapter of prose (bench/corpus.py) with synthesize_chapter
into a loopback S3 (moto's server) or local storage, with the engine's time inside `synthesize` (tokenize,
forward pass, copy back) measured by wrapping it. `--code DIR` runs the synth package of another checkout
(e.g. a worktree of main) against the same model and text, for a before/after in one run; runs of the two
alternate and medians are reported. Rows per pass are each engine's own default.

Usage: python bench/pipeline.py [--model mms|tiny] [--chars N] [--repeats 3] [--storage s3|local]
                                [--code DIR ...]
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


def child(code: str, model_dir: str, chars: int, storage_url: str, tag: str) -> None:
    sys.path[:0] = [code, str(ROOT)]
    from bench.corpus import chapter_text
    from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
    from synth.engines import load_engine
    from synth.storage import open_storage

    engine = load_engine(model_dir, "cpu")
    engine.synthesize(["warm up."], seed=0)
    inner, model_s = engine.synthesize, [0.0]

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            model_s[0] += time.perf_counter() - start

    engine.synthesize = timed  # type: ignore[method-assign]
    options = SynthOptions(max_batch_size=engine.batch_rows)
    job = ChapterJob("bench", tag, chapter_text(chars), seed=0)
    start = time.perf_counter()
    result = synthesize_chapter(job, engine, open_storage(storage_url), options)
    wall = time.perf_counter() - start
    print(json.dumps({"code": code, "rows": engine.batch_rows, "chunks": result["chunks"],
                      "audio_s": result["duration_s"], "wall_s": round(wall, 2), "model_s": round(model_s[0], 2),
                      "model_busy": round(model_s[0] / wall, 4),
                      "audio_s_per_s": round(result["duration_s"] / wall, 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mms", choices=["mms", "tiny"])
    parser.add_argument("--chars", type=int, help="chapter length (default: 1500 for mms, 30000 for tiny)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storage", default="s3", choices=["s3", "local"])
    parser.add_argument("--code", nargs="+", default=[str(ROOT)], help="checkouts whose synth/ to run")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        code, model_dir, chars, storage_url, tag = args.child
        child(code, model_dir, int(chars), storage_url, tag)
        return

    sys.path.insert(0, str(ROOT))
    from bench.loopback import loopback_s3
    from synth.engines.random_vits import build_random_vits

    chars = args.chars or (1500 if args.model == "mms" else 30_000)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    print(json.dumps({"load_average": os.getloadavg(), "model": args.model, "chars": chars}), flush=True)
    with tempfile.TemporaryDirectory() as tmp, loopback_s3(args.storage == "s3") as s3:
        model = build_random_vits(Path(tmp) / args.model, size=args.model)
        storage_url = "s3://bench/audio" if s3 else Path(tmp, "store").as_uri()
        env |= s3 or {}
        runs: dict[str, list[dict]] = {code: [] for code in args.code}
        for repeat in range(args.repeats):
            for code in args.code:
                out = subprocess.run([sys.executable, __file__, "--child", code, str(model), str(chars), storage_url,
                                      f"r{repeat}"], check=True, capture_output=True, text=True, cwd=tmp, env=env)
                runs[code].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(runs[code][-1]), flush=True)
    for code, results in runs.items():
        print(json.dumps({"summary": code, "rows": results[0]["rows"],
                          "model_busy_median": statistics.median(r["model_busy"] for r in results),
                          "model_busy_range": [min(r["model_busy"] for r in results),
                                               max(r["model_busy"] for r in results)],
                          "audio_s_per_s_median": statistics.median(r["audio_s_per_s"] for r in results)}))
    print(json.dumps({"load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
