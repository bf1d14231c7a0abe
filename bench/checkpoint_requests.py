"""Storage requests of one long chapter against a loopback S3 (moto's server), counted at boto3.

A 200,000-character chapter (the longest accepted) is synthesized on the tiny random VITS into S3; every
HTTP request boto3 sends is counted by operation (uploads of large parts are several requests). `--code DIR`
runs another checkout's synth package (e.g. a worktree of main) for the before figure. The tiny model is
far faster than a real one, and checkpoints here follow time: so the run is also made with the checkpoint
interval scaled by the speed ratio of the two models (measured in the same run), which gives the count a
real-size model would make at the default AUDIOBOOK_CHECKPOINT_SECONDS.

Usage: python bench/checkpoint_requests.py [--chars 200000] [--code DIR ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(code: str, model_dir: str, chars: int, checkpoint_s: float, tag: str) -> None:
    sys.path[:0] = [code, str(ROOT)]
    import dataclasses

    from bench.corpus import chapter_text
    from synth.chapter import ChapterJob, SynthOptions, synthesize_chapter
    from synth.engines import load_engine
    from synth.storage.s3 import S3Storage

    engine = load_engine(model_dir, "cpu")
    storage = S3Storage("bench", "audio")
    counts: collections.Counter[str] = collections.Counter()
    storage.client.meta.events.register("before-send.s3", lambda **kw: counts.update([kw["event_name"]
                                                                                      .rsplit(".", 1)[1]]))
    fields = {f.name for f in dataclasses.fields(SynthOptions)}
    if "checkpoint_s" not in fields and tag.startswith("c1"):
        return  # checkpoints per batch: one run says it all
    options = SynthOptions(max_batch_size=engine.batch_rows,
                           **({"checkpoint_s": checkpoint_s} if "checkpoint_s" in fields else {}))
    start = time.perf_counter()
    result = synthesize_chapter(ChapterJob("bench", tag, chapter_text(chars), format="flac", seed=0), engine,
                                storage, options)
    print(json.dumps({"code": code, "checkpoint_s": checkpoint_s if "checkpoint_s" in fields else "per batch",
                      "chunks": result["chunks"], "audio_s": result["duration_s"],
                      "wall_s": round(time.perf_counter() - start, 1), "checkpoints": result.get("checkpoints"),
                      "requests": sum(counts.values()), "by_operation": dict(sorted(counts.items()))}), flush=True)


def speed(model_dir: Path) -> float:
    """Audio-s per wall-s of one row per pass on a short text (the same for both models)."""
    sys.path.insert(0, str(ROOT))
    from bench.corpus import chapter_text
    from synth.engines import load_engine
    from synth.text.chunk import chunk_text
    from synth.text.normalize import normalize

    engine = load_engine(str(model_dir), "cpu")
    texts = [engine.speakable(c.spoken) for c in chunk_text(normalize(chapter_text(600, seed=3)), 300)]
    engine.synthesize(texts[:1], seed=0)
    start = time.perf_counter()
    audio = sum(engine.synthesize([t], seed=0)[0].size for t in texts)
    return audio / engine.sample_rate / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=200_000)
    parser.add_argument("--checkpoint-s", type=float, default=30.0, help="AUDIOBOOK_CHECKPOINT_SECONDS to model")
    parser.add_argument("--code", nargs="+", default=[str(ROOT)], help="checkouts whose synth/ to run")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        code, model_dir, chars, checkpoint_s, tag = args.child
        child(code, model_dir, int(chars), float(checkpoint_s), tag)
        return

    sys.path.insert(0, str(ROOT))
    from bench.loopback import loopback_s3
    from synth.engines.random_vits import build_random_vits

    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    print(json.dumps({"load_average": os.getloadavg(), "chars": args.chars}), flush=True)
    with tempfile.TemporaryDirectory() as tmp, loopback_s3() as s3:
        tiny = build_random_vits(Path(tmp) / "tiny")
        ratio = speed(build_random_vits(Path(tmp) / "mms", size="mms")) / speed(tiny)
        scaled = args.checkpoint_s * ratio
        print(json.dumps({"mms_vs_tiny_speed": round(ratio, 4), "scaled_checkpoint_s": round(scaled, 3)}),
              flush=True)
        for code in args.code:
            for index, checkpoint_s in enumerate((args.checkpoint_s, scaled)):
                subprocess.run([sys.executable, __file__, "--child", code, str(tiny), str(args.chars),
                                str(checkpoint_s), f"c{index}-{abs(hash(code)) % 10**6}"],
                               check=True, cwd=tmp, env=env | (s3 or {}))
    print(json.dumps({"load_average": os.getloadavg()}), flush=True)


if __name__ == "__main__":
    main()
