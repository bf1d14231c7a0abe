"""What each GPU worker says about its model, where the control plane reads it: one Redis hash per broker
(`<prefix>audiobook:worker-health`, nodename -> JSON), on the Redis that holds the scaler's state.

A worker reports once its pool process has tried to load the model (loaded, or the error), and again when a
chapter finds the model unloadable. The scaler reads the hash every tick: an error makes the worker leave and
counts toward the crash-loop breaker; a loaded model marks the worker ready.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

HEALTH_KEY = "audiobook:worker-health"
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class WorkerHealth:
    ok: bool  # the model loaded
    error: str | None  # why it did not
    at: float


def health_key(key_prefix: str = "") -> str:
    return f"{key_prefix}{HEALTH_KEY}"


def publish(client: redis.Redis, key: str, nodename: str, error: str | None, now: float) -> None:
    """Record whether `nodename`'s model loaded (error None) or why not (first line, shortened)."""
    text = None if error is None else (error.strip().splitlines() or [""])[0][:MAX_ERROR_CHARS]
    client.hset(key, nodename, json.dumps({"ok": error is None, "error": text, "at": now}))


def read(client: redis.Redis, key: str) -> dict[str, WorkerHealth]:
    """Every report, by nodename (unreadable entries skipped)."""
    found = {}
    for nodename, raw in client.hgetall(key).items():
        try:
            data = json.loads(raw)
            found[nodename.decode()] = WorkerHealth(bool(data["ok"]), data.get("error"), float(data["at"]))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def forget(client: redis.Redis, key: str, nodenames: list[str]) -> None:
    if nodenames:
        client.hdel(key, *nodenames)
