"""The endpoint's handler: its contract, its refusals, the SDK's own --test_input mode, and the fake's API."""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
import runpod
import soundfile as sf

from settings import Settings
from synth.chapter import SynthOptions
from synth.preview import cache_key
from synth.serverless import INVALID_INPUT, ClipLimits, make_handler, run_preview
from tests.fakes.runpod_serverless import FakeServerless
from tests.support.processes import ROOT

CONTRACT = {"format", "sample_rate", "duration_s", "characters"}


def test_output_follows_the_contract_inline(tiny_engine, handler_settings: Settings) -> None:  # noqa: ANN001
    handler = make_handler(lambda: tiny_engine, lambda: handler_settings)
    output = handler({"id": "j1", "input": {"text": "Hello there. It is 3 o'clock.", "format": "flac"}})
    assert set(output) == CONTRACT | {"audio_b64"}
    audio, rate = sf.read(io.BytesIO(base64.b64decode(output["audio_b64"])), dtype="float32")
    assert rate == output["sample_rate"] == tiny_engine.sample_rate and output["format"] == "flac"
    assert output["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3) and len(audio) > 0
    assert output["characters"] == len("Hello there. It is three o'clock.")
    assert max(abs(audio)) <= 10 ** (-3 / 20)  # the chapter's peak ceiling


def test_output_is_a_uri_when_the_endpoint_has_storage(tiny_engine, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("AUDIOBOOK_STORAGE_URL", str(tmp_path / "store"))
    s = Settings()
    output = make_handler(lambda: tiny_engine, lambda: s)({"id": "j", "input": {"text": "Hello there."}})
    assert set(output) == CONTRACT | {"uri"}
    key = cache_key("Hello there.", None, tiny_engine.name, "wav")
    assert output["uri"] == (tmp_path / "store" / f"{key}.wav").as_uri()
    assert sf.info(str(tmp_path / "store" / f"{key}.wav")).samplerate == tiny_engine.sample_rate


@pytest.mark.parametrize("job_input,message", [
    ("just text", "input must be an object"),
    ({}, "text: must be a non-empty string"),
    ({"text": "  "}, "text: must be a non-empty string"),
    ({"text": "hi", "seed": 1}, "unknown field(s) seed"),
    ({"text": "hi", "voice": "../x"}, "voice: must be 1-64 letters"),
    ({"text": "hi", "voice": "speaker_3"}, "voice: unknown voice 'speaker_3'"),
    ({"text": "hi", "format": "mp3"}, "format: must be one of wav, flac"),
    ({"text": "word " * 86}, "text: has 429 characters after normalisation; a preview speaks at most 428"),
    ({"text": "x" * 10_000}, "text: has 10000 characters; a preview speaks at most 428"),
])
def test_refusals_fail_the_job_with_a_message(tiny_engine, handler_settings: Settings, job_input: object,  # noqa: ANN001
                                              message: str) -> None:
    output = make_handler(lambda: tiny_engine, lambda: handler_settings)({"id": "j", "input": job_input})
    assert output == {"error": INVALID_INPUT + output["error"].removeprefix(INVALID_INPUT)}
    assert message in output["error"]


def test_audio_never_exceeds_the_preview_length(tiny_engine) -> None:  # noqa: ANN001
    limits = ClipLimits(max_chars=3000, max_seconds=2.0, options=SynthOptions(head_s=0.1, tail_s=0.3))
    output = run_preview({"text": "A long line of words goes on. " * 60}, tiny_engine, limits)
    audio, rate = sf.read(io.BytesIO(base64.b64decode(output["audio_b64"])))
    assert output["duration_s"] == 2.0 and len(audio) == 2 * rate


def _test_input(job: str, tiny_model_dir: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIOBOOK_", "PREVIEW_", "RUNPOD_"))}
    return subprocess.run(
        [sys.executable, "-m", "synth.serverless", "--test_input", job], cwd=ROOT, capture_output=True, text=True,
        timeout=180, env=clean | {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
                                  "AUDIOBOOK_MODEL": str(tiny_model_dir), "AUDIOBOOK_DEVICE": "cpu",
                                  "HOME": str(tmp_path), "OMP_NUM_THREADS": "1", **env})


def test_handler_runs_in_the_sdks_test_input_mode(tiny_model_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    done = _test_input('{"input": {"text": "Hello from the endpoint image.", "format": "wav"}}', tiny_model_dir,
                       tmp_path, AUDIOBOOK_STORAGE_URL=store.as_uri())
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if "Job result: " in line)
    output = ast.literal_eval(line.split("Job result: ", 1)[1])["output"]
    assert set(output) == CONTRACT | {"uri"} and output["characters"] == len("Hello from the endpoint image.")
    audio, rate = sf.read(output["uri"].removeprefix("file://"))
    assert rate == output["sample_rate"] and output["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3)

    refused = _test_input('{"input": {"text": "' + "x" * 5000 + '"}}', tiny_model_dir, tmp_path)
    assert refused.returncode == 1 and "invalid input: text: has 5000 characters" in refused.stdout


def test_the_fake_speaks_runpods_api_to_the_unmodified_sdk(fake_endpoint: FakeServerless,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runpod, "endpoint_url_base", fake_endpoint.url)
    endpoint = runpod.Endpoint(fake_endpoint.endpoint_id, api_key=fake_endpoint.api_key)

    job = endpoint.run({"text": "Hello there."})
    output = job.output(timeout=30)
    assert set(output) == CONTRACT | {"audio_b64"} and job.status() == "COMPLETED"
    record = endpoint.rp_client.get(f"{fake_endpoint.endpoint_id}/status/{job.job_id}")
    assert set(record) == {"delayTime", "executionTime", "id", "output", "status"}
    assert list(job.stream()) == [output]  # a finished job streams its output once, then the stream ends
    assert endpoint.run_sync({"text": "Hi."}, timeout=30)["format"] == "wav"
    assert endpoint.run_sync({"text": "x" * 5000}, timeout=30) is None  # FAILED: the SDK drops the error
    health = endpoint.health()
    assert health["jobs"] == {"completed": 2, "failed": 1, "inProgress": 0, "inQueue": 0, "retried": 0}

    fake_endpoint.inject("cold", seconds=5)
    queued = endpoint.run({"text": "Late."})
    assert queued.cancel() == {"id": queued.job_id, "status": "CANCELLED"}
    assert endpoint.purge_queue() == {"removed": 0, "status": "completed"}

    # The SDK's stream() never ends on CANCELLED (why tasks/endpoint.py polls /status itself).
    ended = threading.Event()

    def drain() -> None:
        with contextlib.suppress(requests.HTTPError):
            list(queued.stream())
        ended.set()

    threading.Thread(target=drain, daemon=True).start()
    assert not ended.wait(2.5)
    fake_endpoint.jobs.pop(queued.job_id)  # only an error (404 now) ends it
    assert ended.wait(5)

    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        runpod.Endpoint(fake_endpoint.endpoint_id, api_key="wrong").run({"text": "Hi."})
    with pytest.raises(requests.HTTPError, match="404"):
        runpod.Endpoint("no-such-endpoint", api_key=fake_endpoint.api_key).health()
    assert fake_endpoint.calls["run"] == 2 and fake_endpoint.calls["runsync"] == 2
