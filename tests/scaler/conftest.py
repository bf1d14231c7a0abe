"""Fixtures of the scaler tests: the RunPod fake, a RunPod provider on it, and a Scaler factory."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from scaler.observe import RedisDepth
from scaler.policy import PolicyConfig
from scaler.providers.base import Provider
from scaler.providers.local import LocalProvider
from scaler.providers.runpod import RunPodProvider
from scaler.state import StateStore
from scaler.tick import Scaler
from tests.fakes.runpod_api import FakeRunPod
from tests.support.processes import ROOT

A4000 = "NVIDIA RTX A4000"
RTX3090 = "NVIDIA GeForce RTX 3090"
BROKER_SECRET = "s3cret-broker-pass"
POD_ENV = {"CELERY_BROKER_URL": f"redis://:{BROKER_SECRET}@10.0.0.5:6379/0", "AWS_SECRET_ACCESS_KEY": "aws-secret-0123"}
DEPLOYMENT = "test-deploy"
SCALER_KEYS = {"dry_run", "capacity_backoff_s", "inspect_timeout_s", "lock_ttl_s", "clock", "history",
               "provider_timeout_s", "crash_loop_workers", "crash_loop_cooloff_s", "lease_s"}


@pytest.fixture
def fake_runpod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeRunPod]:
    """The fake API on loopback; the SDK reaches it through RUNPOD_API_BASE_URL (read on every call)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # never ~/.runpod/config.toml
    fake = FakeRunPod(api_key=f"rp-{uuid.uuid4().hex}", boot_s=0.3, hang_s=1.0, slow_s=0.2).start()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)
    yield fake
    fake.stop()


@pytest.fixture
def make_runpod(fake_runpod: FakeRunPod) -> Callable[..., RunPodProvider]:
    def make(**kw: Any) -> RunPodProvider:
        options: dict[str, Any] = dict(
            api_key=fake_runpod.api_key, gpu_types=[A4000, RTX3090], image="ghcr.io/example/audiobook-worker:1",
            name_prefix="test-gpu", env=POD_ENV, deployment=DEPLOYMENT, cloud_type="SECURE", timeout_s=2.0)
        return RunPodProvider(**(options | kw))

    return make


@pytest.fixture
def make_scaler(redis_url: str, client_app: Celery) -> Iterator[Callable[..., Scaler]]:
    """Factory: a Scaler on the test Redis and broker, with policy knobs as keyword arguments."""
    clients: list[redis.Redis] = []

    def make(provider: Provider, **kw: Any) -> Scaler:
        scaler_kw = {k: kw.pop(k) for k in list(kw) if k in SCALER_KEYS}
        client = redis.Redis.from_url(redis_url)
        clients.append(client)
        return Scaler(app=client_app, provider=provider, depth=RedisDepth(client, "gpu-long", {}),
                      store=StateStore(client, provider.name_prefix),  # type: ignore[attr-defined]
                      config=PolicyConfig(**kw), name_prefix=provider.name_prefix,  # type: ignore[attr-defined]
                      deployment=provider.deployment,  # type: ignore[attr-defined]
                      **({"inspect_timeout_s": 0.2, "provider_timeout_s": getattr(provider, "timeout_s", 20.0)}
                         | scaler_kw))

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def enqueue(client_app: Celery) -> Callable[..., list[str]]:
    """Send `count` chapters to gpu-long by task name, as another service would; returns their ids."""
    def send(count: int, text: str = "A short chapter.", book_id: str = "book") -> list[str]:
        ids = []
        for i in range(count):
            result = client_app.send_task("audiobook.synthesize_chapter", queue="gpu-long", kwargs={
                "book_id": book_id, "chapter_id": f"c{uuid.uuid4().hex[:8]}-{i}", "text": text})
            ids.append(result.id)
        return ids

    return send


@pytest.fixture
def local_provider(worker_env: dict[str, str]) -> Iterator[LocalProvider]:
    """Local workers with the test environment (test Redis, tiny model); all are killed at teardown."""
    directory = Path(worker_env["SCALER_LOCAL_DIR"])
    provider = LocalProvider(directory, "test-local", env=worker_env, cwd=ROOT, stop_wait_s=15, deployment=DEPLOYMENT)
    yield provider
    pids = []
    for path in directory.glob("*.json"):
        try:
            pids.append(int(json.loads(path.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if pids and sig == signal.SIGTERM:
            time.sleep(2)
    provider.list_instances()  # reaps the exited children, forgets their pid files
