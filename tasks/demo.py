"""The local demo: the whole system on one machine, on the embedded defaults, with no cloud account.

Starts Redis if none answers, runs the Procfile's control, beat and flower processes through honcho with
the local provider (the scaler starts and stops GPU-queue worker processes), submits the sample book,
shows live progress, and ends with a summary: the M4B, the chapter files, durations, real-time factor,
how the pool scaled, and Flower's URL. Every process it started is gone when it returns, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from tasks.localstack import (
    DEFAULT_BROKER,
    HONCHO_COMMAND,
    STACK_ENV,
    StackError,
    ensure_redis,
    hub_unreachable,
    launch_honcho,
    resolve_model,
    stack_processes,
    stop_marked,
)
from tasks.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
POOL_PREFIX = "audiobook-demo"


def _say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def demo_model(configured: str, env: dict[str, str]) -> str:
    """The configured model if it loads; else the offline Piper voice; else random weights (noise)."""
    try:
        return resolve_model(configured, env, _say)
    except StackError as exc:
        from synth.engines.random_vits import build_random_vits

        target = VAR / "models" / "random-vits"
        if not (target / "config.json").exists():
            build_random_vits(target)
        _say(f"{exc}. A random-weight model at {target} is used: the pipeline is real, the audio is noise")
        return str(target)


def demo_environment(base: dict[str, str], broker: str, model: str, short: bool) -> dict[str, str]:
    """The embedded defaults, with a short scaler interval and idle window so the whole cycle shows."""
    env = dict(base)
    env.update({
        "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker, "AUDIOBOOK_MODEL": model,
        "AUDIOBOOK_DEVICE": "cpu", "TRANSFORMERS_VERBOSITY": "error",
        "SCALER_PROVIDER": "local", "SCALER_POLICY": "backlog",
        "SCALER_MIN_WORKERS": "0", "SCALER_MAX_WORKERS": str(max(1, min(4, os.cpu_count() or 1))),
        "SCALER_INTERVAL_SECONDS": "2" if short else "3", "SCALER_IDLE_SECONDS": "6" if short else "20",
        "SCALER_BOOT_SECONDS": "8", "SCALER_TARGET_DRAIN_SECONDS": "20", "SCALER_SECONDS_PER_CHAR": "0.01",
        "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
        "FLOWER_PORT": str(free_port()), "FLOWER_ADDRESS": "127.0.0.1",
    })
    env.setdefault("AUDIOBOOK_STORAGE_URL", str(VAR / "audio"))
    env.setdefault("SCALER_NAME_PREFIX", POOL_PREFIX)
    env.setdefault("SCALER_LOCAL_DIR", str(VAR / "demo" / "workers"))
    env.setdefault("FLOWER_BASIC_AUTH", f"demo:{secrets.token_urlsafe(9)}")
    return env


def _pool_size() -> int:
    from scaler.providers.local import LocalProvider
    from settings import get_settings

    s = get_settings()
    return len(LocalProvider(s.scaler_local_dir, s.scaler_name_prefix).list_instances())


def run(args: argparse.Namespace) -> dict:
    summary: dict = {"ok": False}
    started = time.monotonic()
    stack_id = secrets.token_hex(8)
    base = dict(os.environ)
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    base[STACK_ENV] = stack_id  # every process the demo starts, and every worker the scaler starts, carries it
    honcho: subprocess.Popen | None = None
    redis_pid: int | None = None
    try:
        broker, server = ensure_redis(os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER), VAR / "demo" / "redis",
                                      _say, base)
        redis_pid = server.proc.pid if server is not None and server.proc is not None else None
        if hub_unreachable(base):
            base["HF_HUB_OFFLINE"] = "1"
        from settings import get_settings

        env = demo_environment(base, broker, demo_model(get_settings().model, base), args.short)
        os.environ.update(env)  # this process reads the same settings as the ones it starts
        from celery import Celery

        from tasks.cli.book import submit_book

        get_settings.cache_clear()
        settings = get_settings()
        log_path = VAR / "demo" / "honcho.log"
        honcho = launch_honcho(env, log_path)
        _say(f"started `{HONCHO_COMMAND}` (logs in {log_path}); model {env['AUDIOBOOK_MODEL']}; up to "
             f"{env['SCALER_MAX_WORKERS']} local GPU-queue workers")
        client = Celery("demo", broker=broker, backend=broker, set_as_current=False)
        deadline = time.monotonic() + 90
        while not client.control.ping(timeout=1.0):
            if honcho.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the control worker did not start; see {log_path}")

        timeline: list[tuple[float, int]] = [(0.0, _pool_size())]
        from tasks.progress import pool_snapshot

        base_snapshot = pool_snapshot(client, settings)

        def snapshot() -> dict:
            size = _pool_size()
            if size != timeline[-1][1]:
                timeline.append((round(time.monotonic() - started, 1), size))
            return base_snapshot()

        book_path = args.book or ROOT / "samples" / ("short.md" if args.short else "book.md")
        submitted = submit_book(book_path, output="m4b", timeout=60)
        _say(f"submitted {book_path.name} as book {submitted['book_id']} ({submitted['chapters']} chapters)")
        import tasks.progress as progress
        from tasks.bookstatus import book_status
        from tasks.runtime import get_storage

        storage = get_storage()
        final = progress.follow(lambda: book_status(client, storage, submitted["book_id"]), snapshot,
                                timeout=args.timeout)
        if final.error:
            raise RuntimeError(f"the book failed: {final.error}")
        book_done = time.monotonic() - started
        _say(f"book done after {book_done:.0f} s; waiting for the pool to scale back to the minimum "
             f"(idle window {env['SCALER_IDLE_SECONDS']} s)")
        deadline = time.monotonic() + float(env["SCALER_IDLE_SECONDS"]) + 90
        while timeline[-1][1] > int(env["SCALER_MIN_WORKERS"]) and time.monotonic() < deadline:
            snapshot()
            time.sleep(0.5)
        manifest = final.result or {}
        audio_s = float(manifest.get("duration_s") or 0.0)
        synth_wall = book_done
        summary = {
            "ok": True, "book_id": submitted["book_id"], "book_uri": manifest.get("book_uri"),
            "manifest_uri": manifest.get("manifest_uri"),
            "chapters": [{"chapter_id": c["chapter_id"], "title": c.get("title"), "uri": c["uri"],
                          "start_s": c["start_s"], "duration_s": c["duration_s"]} for c in manifest["chapters"]],
            "audio_s": round(audio_s, 2), "wall_s": round(synth_wall, 2),
            "real_time_factor": round(synth_wall / audio_s, 3) if audio_s else None,
            "pool_timeline": timeline, "pool_max": max(n for _, n in timeline),
            "pool_final": timeline[-1][1], "model": env["AUDIOBOOK_MODEL"],
            "flower": {"url": f"http://127.0.0.1:{env['FLOWER_PORT']}/",
                       "user": env["FLOWER_BASIC_AUTH"].split(":", 1)[0],
                       "password": env["FLOWER_BASIC_AUTH"].split(":", 1)[1]},
        }
        client.close()
        return summary
    finally:
        # honcho first (it stops control, beat and flower), then the workers the scaler left, then Redis.
        pids = [honcho.pid] if honcho is not None else []
        summary["worker_pids"] = [p for p in stack_processes(stack_id) if p not in (*pids, redis_pid)]
        stop_marked(stack_id, honcho.pid if honcho is not None else None, redis_pid, lambda _: None, grace=20.0)
        summary["process_pids"] = pids + ([redis_pid] if redis_pid else [])


def print_summary(summary: dict) -> None:
    print()
    print("Audiobook ready" if summary.get("ok") else "Demo did not finish")
    if not summary.get("ok"):
        return
    print(f"  book (M4B):     {summary['book_uri']}")
    print(f"  manifest:       {summary['manifest_uri']}")
    for chapter in summary["chapters"]:
        print(f"  chapter {chapter['chapter_id']:<6} {chapter['start_s']:>8.2f} s  {chapter['duration_s']:>7.2f} s  "
              f"{chapter['uri']}")
    print(f"  audio {summary['audio_s']:.1f} s in {summary['wall_s']:.1f} s wall "
          f"(real-time factor {summary['real_time_factor']}), model {summary['model']}")
    steps = " -> ".join(f"{n} at {t:.0f} s" for t, n in summary["pool_timeline"])
    print(f"  pool:           {steps}")
    flower = summary["flower"]
    print(f"  Flower:         {flower['url']} (user {flower['user']}, password {flower['password']}; "
          "it stopped with the demo: `make up` keeps the system running)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole system locally on a sample book")
    parser.add_argument("--short", action="store_true", help="two tiny chapters and a short idle window (CI)")
    parser.add_argument("--book", type=Path, help="a .txt/.md/.epub to read instead of the sample book")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up after this many seconds")
    parser.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    try:
        summary = run(args)
    except KeyboardInterrupt:
        _say("interrupted; every process was stopped")
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the newcomer, details in the logs
        _say(f"failed: {exc}")
        return 1
    print_summary(summary)
    if args.summary_json:
        args.summary_json.write_text(json.dumps(summary, indent=2))
    return 0 if summary.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
