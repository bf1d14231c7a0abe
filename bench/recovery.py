"""Recovery time: from a GPU worker's death (SIGKILL of its process group, as a vanished pod) to its chapter
running again on another worker, on Redis (leases + reaper) and on RabbitMQ (the broker requeues at once).

Starts a private redis-server (results, and the Redis broker), a private RabbitMQ node, two GPU workers, a
control worker and beat per broker, on a tiny random VITS. Each sample: send a chapter, wait until it has made
progress, kill the worker running it, time until the other worker reports progress on it (its first report
comes right after it has loaded the checkpoint), then start a replacement and wait until it has loaded its
model. Prints the median and range per broker next to the Redis bound AUDIOBOOK_LEASE_S +
SCALER_INTERVAL_SECONDS (plus pickup); without leases a Redis chapter waits for the visibility timeout (4 h by
default).
Usage: python bench/recovery.py [--samples 5] [--lease 6] [--interval 3] [--brokers redis,amqp]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TEXT = " ".join(f"Sentence number {n} is here." for n in range(1, 61))


def measure(broker_url: str, backend_url: str, base_env: dict[str, str], work: Path, samples: int) -> list[float]:
    from celery import Celery

    from tests.support.processes import CeleryBeat, CeleryWorker, wait_for

    env = base_env | {"CELERY_BROKER_URL": broker_url, "CELERY_RESULT_BACKEND": backend_url}
    client = Celery("bench", broker=broker_url, backend=backend_url, set_as_current=False)
    client.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
    started: list[CeleryWorker] = []

    def worker(name: str, queues: str = "gpu-long", concurrency: int = 1) -> CeleryWorker:
        w = CeleryWorker(env, queues, f"{name}@bench", concurrency, "prefork", work)
        started.append(w.start())
        return w

    (work / "beat").mkdir(exist_ok=True)
    beat = CeleryBeat(env, work / "beat").start()
    gpus = [worker("gpu-0"), worker("gpu-1"), worker("control", "control", 2)][:2]
    times = []
    try:
        for n in range(samples):
            for w in (*gpus, started[2]):
                w.wait_ready(client, timeout=180)
            task_id = client.send_task("audiobook.synthesize_chapter", queue="gpu-long", kwargs={
                "book_id": f"bench-{work.name}", "chapter_id": f"c{n}", "text": TEXT, "seed": n}).id

            def progress(task_id: str = task_id) -> dict | None:
                meta = client.backend.get_task_meta(task_id)
                return meta["result"] if meta["status"] == "PROGRESS" and isinstance(meta["result"], dict) else None

            first = wait_for(lambda: (m := progress()) and m["done"] >= 3 and m, 120, 0.05, "progress")
            victim = next(w for w in gpus if w.hostname == first["worker"])
            died = time.monotonic()
            os.killpg(victim.proc.pid, signal.SIGKILL)
            gone = victim.hostname
            wait_for(lambda: (m := progress()) and m["worker"] != gone, 600, 0.05, "the chapter again")  # noqa: B023
            times.append(time.monotonic() - died)
            print(f"  sample {n + 1}: {times[-1]:.2f} s", file=sys.stderr)
            victim.proc.wait()
            gpus.remove(victim)
            gpus.append(fresh := worker(f"gpu-{n + 2}"))
            # A replacement is ready once its pool child has loaded the model, not when it first answers a ping.
            wait_for(lambda w=fresh: "loaded model" in w.tail(400), 300, 0.5, "the replacement's model")
            wait_for(lambda: client.backend.get_task_meta(task_id)["status"] == "SUCCESS",  # noqa: B023
                     300, 0.2, "the chapter")
    finally:
        for w in started:
            w.stop()
        beat.stop()
        client.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--lease", type=float, default=6.0, help="AUDIOBOOK_LEASE_S")
    parser.add_argument("--interval", type=float, default=3.0, help="SCALER_INTERVAL_SECONDS (reaper passes)")
    parser.add_argument("--brokers", default="redis,amqp")
    args = parser.parse_args()

    from synth.engines.random_vits import build_random_vits
    from tasks.processes import RabbitServer, RedisServer

    results = {}
    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
        work = Path(tmp)
        model_dir = build_random_vits(work / "tiny-vits")
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIOBOOK_", "SCALER_", "CELERY_"))}
        base_env |= {"AUDIOBOOK_MODEL": str(model_dir), "AUDIOBOOK_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
                     "AUDIOBOOK_STORAGE_URL": (work / "audio").as_uri(), "AUDIOBOOK_LEASE_S": str(args.lease),
                     "SCALER_INTERVAL_SECONDS": str(args.interval), "SCALER_DRY_RUN": "1",
                     "SCALER_LOCAL_DIR": str(work / "workers"), "AUDIOBOOK_MAX_BATCH_CHARS": "60",
                     "AUDIOBOOK_MAX_CHUNK_CHARS": "40", "PYTHONUNBUFFERED": "1", "TMPDIR": str(work)}
        redis_server = RedisServer(work / "redis", appendonly=False).start()
        try:
            for broker in args.brokers.split(","):
                directory = work / f"broker-{broker}"
                directory.mkdir()
                print(f"{broker}:", file=sys.stderr)
                if broker == "redis":
                    times = measure(redis_server.url, redis_server.url, base_env, directory, args.samples)
                else:
                    rabbit = RabbitServer(directory / "rabbit").start()
                    try:
                        times = measure(rabbit.url, redis_server.url, base_env, directory, args.samples)
                    finally:
                        rabbit.kill()
                results[broker] = {"median_s": round(statistics.median(times), 2), "min_s": round(min(times), 2),
                                   "max_s": round(max(times), 2), "samples": [round(t, 2) for t in times]}
        finally:
            redis_server.kill()
    report = {"lease_s": args.lease, "reaper_interval_s": args.interval,
              "redis_bound_s": args.lease + args.interval, "death_to_running_again": results}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
