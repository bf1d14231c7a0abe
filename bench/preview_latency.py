"""Preview latency over the loopback serverless fake: what queue, limits, cache and SDK add to synthesis.

Starts a throwaway redis-server, the fake RunPod endpoint (running the real handler on a tiny random
VITS) and a real control worker, then sends previews of distinct texts one at a time and prints the
median and p95 of the overhead: client-observed latency minus the executionTime the endpoint reports.
Cache hits are timed too. Usage: python bench/preview_latency.py [--previews 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 1), "p95_ms": round(percentile(values, 0.95), 1),
            "min_ms": round(min(values), 1), "max_ms": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previews", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    from celery import Celery

    from settings import Settings
    from synth.engines import load_engine
    from synth.engines.random_vits import build_random_vits
    from synth.serverless import make_handler
    from tests.fakes.runpod_serverless import FakeServerless
    from tests.support.processes import CeleryWorker, RedisServer

    with tempfile.TemporaryDirectory(prefix="preview-bench-") as tmp:
        work = Path(tmp)
        model_dir = build_random_vits(work / "tiny-vits")
        engine = load_engine(str(model_dir), "cpu")
        endpoint_settings = Settings()
        redis_server = RedisServer(work / "redis", appendonly=False).start()
        fake = FakeServerless(make_handler(lambda: engine, lambda: endpoint_settings)).start()
        (work / "home").mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIOBOOK_", "PREVIEW_", "RUNPOD_",
                                                                          "CELERY_", "SCALER_"))}
        env |= {"CELERY_BROKER_URL": redis_server.url, "CELERY_RESULT_BACKEND": redis_server.url,
                "AUDIOBOOK_MODEL": str(model_dir), "AUDIOBOOK_DEVICE": "cpu",
                "AUDIOBOOK_STORAGE_URL": (work / "audio").as_uri(), "RUNPOD_ENDPOINT_BASE_URL": fake.url,
                "RUNPOD_PREVIEW_ENDPOINT_ID": fake.endpoint_id, "RUNPOD_API_KEY": fake.api_key,
                "PREVIEW_RATE_PER_MINUTE": "100000", "HOME": str(work / "home"), "OMP_NUM_THREADS": "1",
                "TMPDIR": str(work)}
        client = Celery("bench", broker=redis_server.url, backend=redis_server.url, set_as_current=False)
        client.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
        worker = CeleryWorker(env, "preview,control", "control@bench", log_dir=work).start()
        try:
            worker.wait_ready(client)
            rows = []
            for n in range(args.warmup + args.previews):
                text = f"Preview number {n} of the benchmark. It reads two short sentences."
                started = time.perf_counter()
                result = client.send_task("audiobook.synthesize_preview", queue="preview",
                                          kwargs={"text": text, "requester": "bench"}).get(timeout=120)
                total_ms = (time.perf_counter() - started) * 1000
                if n >= args.warmup:
                    rows.append((total_ms, result["execution_ms"], result["delay_ms"]))
            cached = []
            for n in range(args.warmup, args.warmup + args.previews):
                text = f"Preview number {n} of the benchmark. It reads two short sentences."
                started = time.perf_counter()
                result = client.send_task("audiobook.synthesize_preview", queue="preview",
                                          kwargs={"text": text, "requester": "bench"}).get(timeout=120)
                assert result["cached"], result
                cached.append((time.perf_counter() - started) * 1000)
        finally:
            worker.stop()
            fake.stop()
            redis_server.kill()
            client.close()

    report = {
        "previews": len(rows),
        "overhead_above_synthesis": summary([total - execution for total, execution, _ in rows]),
        "end_to_end": summary([total for total, _, _ in rows]),
        "synthesis_execution": summary([float(execution) for _, execution, _ in rows]),
        "endpoint_queue_delay": summary([float(delay) for _, _, delay in rows]),
        "cache_hit_end_to_end": summary(cached),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
