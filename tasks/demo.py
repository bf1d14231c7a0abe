"""The local demo: a real broker, a real GPU-queue worker, one sample chapter into ./var/audio.

Runs on the embedded defaults with no cloud account: if no Redis answers at CELERY_BROKER_URL, a
private redis-server is started; if AUDIOBOOK_MODEL cannot be loaded (no model hub here), a random-weight
VITS is built locally so the whole pipeline still runs (its audio is noise, not speech).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from celery import Celery

from settings import redact_url

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_redis(url: str, procs: list[subprocess.Popen]) -> str:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except redis.RedisError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(f"demo: no Redis answers at {redact_url(url)} and redis-server is not installed; "
                 "install it (apt-get install redis-server) or set CELERY_BROKER_URL")
    port = _free_port()
    data = VAR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    procs.append(subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
                                   "--save", "", "--dir", str(data)], stdout=subprocess.DEVNULL,
                                  start_new_session=True))
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            print(f"demo: started a private redis-server on port {port} (AOF on)")
            return url
        except redis.RedisError:
            time.sleep(0.1)
    sys.exit("demo: the private redis-server did not start")


def ensure_model(model: str) -> str:
    from synth.engines import load_engine
    from synth.errors import ModelLoadError

    try:
        load_engine(model, "cpu")
        return model
    except ModelLoadError:
        target = VAR / "models" / "random-vits"
        if not (target / "config.json").exists():
            from synth.engines.random_vits import build_random_vits

            build_random_vits(target, size="tiny")
        print(f"demo: model {model!r} cannot be loaded here (no hub access); using random weights at {target} "
              "- the pipeline is real, the audio is noise")
        return str(target)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in reversed(procs):
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesize a sample chapter through a real worker")
    parser.add_argument("--text", type=Path, default=ROOT / "samples" / "chapter.txt")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    procs: list[subprocess.Popen] = []
    try:
        broker = ensure_redis(os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"), procs)
        env = os.environ | {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker,
                            "AUDIOBOOK_MODEL": ensure_model(os.environ.get("AUDIOBOOK_MODEL", "facebook/mms-tts-eng"))}
        env.setdefault("AUDIOBOOK_STORAGE_URL", str(VAR / "audio"))
        log = open(VAR / "demo-worker.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "gpu-long",
                                       "-c", "1", "-n", "gpu-demo@%h", "--loglevel", "INFO"],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        client = Celery("demo-client", broker=broker, backend=broker, set_as_current=False)
        started = time.monotonic()
        result = client.send_task("audiobook.synthesize_chapter", queue="gpu-long", kwargs={
            "book_id": "demo", "chapter_id": "lighthouse", "title": "The Lighthouse",
            "text": args.text.read_text(encoding="utf-8")})
        print(f"demo: chapter queued as task {result.id}; waiting for the worker ...")
        value = result.get(timeout=600)
        wall = time.monotonic() - started
        print(f"demo: wrote {value['uri']}")
        print(f"demo: {value['duration_s']:.1f} s of audio, {value['sentences']} sentences, model {value['model']}, "
              f"synthesis {value['synth_seconds']:.1f} s, wall {wall:.1f} s")
        client.close()
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
