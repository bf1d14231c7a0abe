"""Preview fixtures: the loopback serverless fake running the real handler, and a control worker's env."""

from __future__ import annotations

import base64
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from celery import Celery
from celery.result import AsyncResult

from settings import Settings
from synth.serverless import make_handler
from tests.fakes.runpod_serverless import FakeServerless


@pytest.fixture
def handler_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the endpoint sees them: defaults, no storage configured (clips come back inline)."""
    for name in list(os.environ):
        if name.startswith(("AUDIOBOOK_", "PREVIEW_")):
            monkeypatch.delenv(name)
    return Settings()


@pytest.fixture
def fake_endpoint(tiny_engine, handler_settings: Settings) -> Iterator[FakeServerless]:  # noqa: ANN001
    """RunPod serverless on loopback, running synth.serverless's handler on the tiny model."""
    with FakeServerless(make_handler(lambda: tiny_engine, lambda: handler_settings)) as fake:
        yield fake


@pytest.fixture
def endpoint_env(fake_endpoint: FakeServerless, tmp_path: Path) -> dict[str, str]:
    """What a control worker needs to use the fake: the SDK's base URL, the endpoint id and key."""
    home = tmp_path / "home"  # runpod reads ~/.runpod/config.toml at import: never the real one
    home.mkdir()
    return {"RUNPOD_ENDPOINT_BASE_URL": fake_endpoint.url, "RUNPOD_PREVIEW_ENDPOINT_ID": fake_endpoint.endpoint_id,
            "RUNPOD_API_KEY": fake_endpoint.api_key, "HOME": str(home), "PREVIEW_TIMEOUT_SECONDS": "20",
            "PREVIEW_MAX_RETRIES": "2"}


def send_preview(app: Celery, **kwargs: object) -> AsyncResult:
    return app.send_task("audiobook.synthesize_preview", kwargs={"requester": "tester"} | kwargs, queue="preview")


def clip_of(result: dict) -> tuple[np.ndarray, int]:
    """The clip a result points at, decoded; inline base64 must match the stored file."""
    assert result["uri"].startswith("file://"), result["uri"]
    stored = Path(result["uri"].removeprefix("file://")).read_bytes()
    if "audio_b64" in result:
        assert base64.b64decode(result["audio_b64"]) == stored
    return sf.read(io.BytesIO(stored), dtype="float32")


def torch_loaded(pid: int) -> bool:
    """Whether `pid` or any process below it has torch's native library mapped."""
    pids, seen = [pid], False
    while pids:
        current = pids.pop()
        try:
            maps = Path(f"/proc/{current}/maps").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        seen = seen or "libtorch" in maps
        pids.extend(int(child) for child in children)
    return seen


def race(count: int, action: Callable[[], object]) -> list:
    """`action` run by `count` threads released together; their results."""
    results: list = []
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results
