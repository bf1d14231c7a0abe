"""Previews end to end: a client enqueues by name, a real control worker calls the fake through the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import soundfile as sf
from celery import Celery
from celery.result import AsyncResult

from synth.text.normalize import normalize
from tests.fakes.runpod_serverless import FakeServerless
from tests.preview.conftest import clip_of, send_preview, torch_loaded
from tests.support.brokers import BOTH_BROKERS
from tests.support.processes import ROOT, wait_for

pytestmark = pytest.mark.slow

TEXT = "Call me Ishmael. Some years ago, never mind how long precisely, I had little money."


def failure(result: AsyncResult, timeout: float = 120) -> Exception:
    with pytest.raises(Exception) as info:  # noqa: B017 - the remote type is checked by name below
        result.get(timeout=timeout)
    return info.value


@BOTH_BROKERS
def test_preview_through_a_control_worker(start_worker, client_app: Celery, fake_endpoint: FakeServerless,
                                          endpoint_env: dict[str, str], worker_env: dict[str, str],
                                          tmp_path: Path) -> None:
    worker = start_worker("preview,control", name="control", env=endpoint_env)
    result = send_preview(client_app, text=TEXT, book_id="moby", chapter_id="ch-01").get(timeout=120)

    audio, rate = clip_of(result)
    assert "audio_b64" in result and rate == result["sample_rate"] == 16000
    assert result["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3) and len(audio) > rate
    assert (result["backend"], result["cached"], result["attempts"]) == ("runpod", False, 1)
    assert result["job_id"] in fake_endpoint.jobs and fake_endpoint.jobs[result["job_id"]].input["text"] == TEXT
    assert result["execution_ms"] > 0 and result["delay_ms"] >= 0
    assert result["cost_usd"] == pytest.approx(result["execution_ms"] / 1000 * 0.00016, abs=1e-6)
    assert (result["book_id"], result["chapter_id"], result["requester"]) == ("moby", "ch-01", "tester")
    assert (result["characters_in"], result["cut"], result["text"]) == (len(TEXT), False, TEXT)

    # Same normalised text, voice and model: from the cache, with no second serverless call.
    again = send_preview(client_app, text=TEXT + "  ", voice="default", requester="other").get(timeout=60)
    assert again["cached"] is True and again["uri"] == result["uri"] and again["cost_usd"] == 0
    assert again["audio_b64"] == result["audio_b64"] and fake_endpoint.submitted == 1
    flac = send_preview(client_app, text=TEXT, format="flac").get(timeout=120)
    assert flac["cached"] is False and flac["uri"].endswith(".flac") and fake_endpoint.submitted == 2

    # The control worker forwarded previews without ever loading torch.
    assert not torch_loaded(worker.proc.pid)

    # The CLI: enqueue by name, wait, write the clip, print its path.
    out = tmp_path / "cli" / "clip.wav"
    done = subprocess.run([str(Path(sys.executable).parent / "audiobook"), "preview", TEXT, "-o", str(out)],
                          cwd=ROOT, env=worker_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and sf.info(str(out)).samplerate == 16000
    refused = subprocess.run([str(Path(sys.executable).parent / "audiobook"), "preview", "  "], cwd=ROOT,
                             env=worker_env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "InvalidPayload" in refused.stderr
    assert "text: must not be empty" in refused.stderr

    bad = [({"text": TEXT, "requester": "a b"}, "requester: must not contain"),
           ({"text": TEXT, "chapter_id": "c1"}, "chapter_id: needs book_id"),
           ({"text": TEXT, "format": "mp3"}, "format: Input should be 'wav' or 'flac'"),
           ({"text": TEXT, "seed": 3}, "seed: unknown field")]
    for kwargs, message in bad:
        error = failure(send_preview(client_app, **kwargs))
        assert type(error).__name__ == "InvalidPayload" and message in str(error)


def test_long_text_is_cut_at_a_sentence_to_the_preview_length(start_worker, client_app: Celery,
                                                              fake_endpoint: FakeServerless,
                                                              endpoint_env: dict[str, str]) -> None:
    start_worker("preview,control", name="control", env=endpoint_env)
    sentences = [f"Sentence {n} of a very long chapter goes on for a while." for n in range(1, 400)]
    text = " ".join(sentences)[:10_000]
    assert len(text) == 10_000
    result = send_preview(client_app, text=text).get(timeout=120)

    audio, rate = clip_of(result)
    assert len(audio) / rate <= 30.0 and result["duration_s"] <= 30.0
    assert result["cut"] is True and result["characters_in"] == 10_000
    assert result["characters"] <= 428 and result["text"].endswith(".")
    assert normalize(text).startswith(result["text"])
    sent = fake_endpoint.jobs[result["job_id"]].input["text"]
    assert sent == result["text"]  # only the cut text ever reaches the endpoint


def test_rate_limit_holds_across_two_workers(start_worker, client_app: Celery, fake_endpoint: FakeServerless,
                                             endpoint_env: dict[str, str]) -> None:
    env = endpoint_env | {"PREVIEW_RATE_PER_MINUTE": "3"}
    workers = [start_worker("preview,control", name=f"control-{x}", env=env) for x in "ab"]
    fake_endpoint.inject("slow", times=3, seconds=0.5)  # keep both workers busy so both take previews
    results = [send_preview(client_app, text=f"Preview number {n}.", requester="alice") for n in range(8)]
    granted, refused = [], []
    for result in results:
        try:
            granted.append(result.get(timeout=120))
        except Exception as exc:  # noqa: BLE001 - sorted by type name below
            refused.append(exc)
    assert len(granted) == 3 and len(refused) == 5
    for exc in refused:
        assert type(exc).__name__ == "PreviewRefused"
        assert "rate limit: requester 'alice' may ask for 3 previews per minute (PREVIEW_RATE_PER_MINUTE); " \
               "retry in" in str(exc)
    # Results keep no request fields (result_extended is off): the workers' logs say who took what.
    took = {w.hostname.split("@")[0] for w in workers for r in results if f"[{r.id}] received" in w.tail(10_000)}
    assert took == {"control-a", "control-b"}
    assert send_preview(client_app, text="Another requester.", requester="bob").get(timeout=120)["cached"] is False


def _spent(redis_url: str, key: str = "audiobook:preview:spend") -> float:
    return sum(float(v) for v in redis.Redis.from_url(redis_url).hgetall(key).values())


def _open_jobs(redis_url: str) -> list[str]:
    return [job.decode() for job in redis.Redis.from_url(redis_url).hkeys("audiobook:preview:open")]


def test_spend_cap_and_each_requesters_share_bind_with_clear_refusals(start_worker, client_app: Celery,
                                                                       fake_endpoint: FakeServerless,
                                                                       endpoint_env: dict[str, str],
                                                                       redis_url: str) -> None:
    # Each call may cost 10 s x $0.01 = $0.10 and is billed that much. $0.30 an hour allows three; one
    # requester's share, 0.67 of it ($0.201), allows two.
    env = endpoint_env | {"PREVIEW_USD_PER_SECOND": "0.01", "PREVIEW_TIMEOUT_SECONDS": "10",
                          "PREVIEW_EXECUTION_TIMEOUT_SECONDS": "10", "PREVIEW_MAX_USD_PER_HOUR": "0.30",
                          "PREVIEW_REQUESTER_SHARE": "0.67"}
    start_worker("preview,control", name="control", env=env)
    fake_endpoint.execution_ms = 10_000
    first = send_preview(client_app, text="First preview.", requester="alice").get(timeout=120)
    second = send_preview(client_app, text="Second preview.", requester="alice").get(timeout=120)
    assert first["cost_usd"] == second["cost_usd"] == pytest.approx(0.10) and first["execution_ms"] == 10_000

    error = failure(send_preview(client_app, text="Third preview.", requester="alice"))
    assert type(error).__name__ == "PreviewRefused"
    assert "spend share of requester 'alice' (PREVIEW_REQUESTER_SHARE=0.67 x PREVIEW_MAX_USD_PER_HOUR=$0.3 = " \
           "$0.2010 an hour) reached: $0.2000 spent in the last hour; retry in 3" in str(error)
    # Another requester still gets previews while alice waits...
    assert send_preview(client_app, text="Bob's preview.", requester="bob").get(timeout=120)["cost_usd"] > 0
    # ...up to the cap that holds for everyone.
    error = failure(send_preview(client_app, text="Carol's preview.", requester="carol"))
    assert type(error).__name__ == "PreviewRefused"
    assert "serverless spend cap PREVIEW_MAX_USD_PER_HOUR=$0.3 reached: $0.3000 spent in the last hour; " \
           "retry in 3" in str(error) and " s (after " in str(error)
    assert fake_endpoint.submitted == 3  # refused before any call
    assert fake_endpoint.jobs[first["job_id"]].policy == {"executionTimeout": 10_000}
    assert _spent(redis_url) == pytest.approx(0.30)
    assert _spent(redis_url, "audiobook:preview:spend:requester:alice") == pytest.approx(0.20)
    # A cached preview costs nothing and is still served.
    assert send_preview(client_app, text="First preview.", requester="alice").get(timeout=60)["cached"] is True


# A job may bill up to its execution timeout, 30 s x $0.01 = $0.30, whatever our own 1 s timeout says.
LOST_ENV = {"PREVIEW_USD_PER_SECOND": "0.01", "PREVIEW_TIMEOUT_SECONDS": "1", "PREVIEW_MAX_RETRIES": "0",
            "PREVIEW_EXECUTION_TIMEOUT_SECONDS": "30"}


def test_a_job_that_completes_after_the_worker_gave_up_is_settled_to_its_bill(start_worker, client_app: Celery,
                                                                               fake_endpoint: FakeServerless,
                                                                               endpoint_env: dict[str, str],
                                                                               redis_url: str) -> None:
    start_worker("preview,control", name="control", env=endpoint_env | LOST_ENV)
    fake_endpoint.inject("late", seconds=2, execution_ms=2500)  # our cancel does not get through
    error = failure(send_preview(client_app, text="Given up on."))
    assert _spent(redis_url) == pytest.approx(0.30)  # held at the worst case until RunPod says more
    assert type(error).__name__ == "PreviewFailed" and "the cancel did not get through" in str(error)
    [job_id] = _open_jobs(redis_url)

    wait_for(lambda: fake_endpoint.jobs[job_id].status == "COMPLETED", 30, what="the late job to complete")
    result = send_preview(client_app, text="The next preview re-reads it.").get(timeout=120)
    assert _open_jobs(redis_url) == []
    assert _spent(redis_url) == pytest.approx(0.025 + result["cost_usd"])  # RunPod's 2.5 s, not a guess


def test_a_job_whose_bill_cannot_be_read_is_charged_the_execution_timeout(start_worker, client_app: Celery,
                                                                          fake_endpoint: FakeServerless,
                                                                          endpoint_env: dict[str, str],
                                                                          redis_url: str) -> None:
    # The shortest execution timeout RunPod accepts keeps the wait for the deadline short: 6 s x $0.01.
    start_worker("preview,control", name="control", env=endpoint_env | LOST_ENV | {
        "PREVIEW_EXECUTION_TIMEOUT_SECONDS": "6"})
    fake_endpoint.inject("lost")  # /status and /cancel about the job fail
    error = failure(send_preview(client_app, text="Never heard of again."))
    assert _spent(redis_url) == pytest.approx(0.06)  # held at the worst case, not our 1 s timeout
    assert type(error).__name__ == "PreviewFailed"
    [raw] = redis.Redis.from_url(redis_url).hvals("audiobook:preview:open")

    client = redis.Redis.from_url(redis_url)
    deadline = json.loads(raw)["deadline"]
    wait_for(lambda: client.time()[0] > deadline, 30, 0.2, "the open job's deadline")
    # No preview comes: the autoscale beat's tick re-reads it. No answer past its deadline: it can no
    # longer change, and is charged the worst case for good.
    client_app.send_task("audiobook.autoscale", queue="control")
    wait_for(lambda: _open_jobs(redis_url) == [], 60, 0.2, "the beat to close the open job")
    assert _spent(redis_url) == pytest.approx(0.06)


def test_endpoint_faults_reach_the_caller_or_are_ridden_out(start_worker, client_app: Celery,
                                                            fake_endpoint: FakeServerless,
                                                            endpoint_env: dict[str, str]) -> None:
    worker = start_worker("preview,control", name="control", env=endpoint_env | {"PREVIEW_MAX_RETRIES": "4"})
    fake_endpoint.inject("FAILED", times=5)
    error = failure(send_preview(client_app, text="This one fails."))
    assert type(error).__name__ == "PreviewFailed"
    assert "no preview after 5 attempts; last: FAILED (job " in str(error)
    assert "injected failure: the worker process died" in str(error)

    fake_endpoint.inject("CANCELLED", seconds=0.2)
    error = failure(send_preview(client_app, text="This one is cancelled."))
    assert type(error).__name__ == "PreviewFailed" and "cancelled on the endpoint" in str(error)

    fake_endpoint.inject("429")
    fake_endpoint.inject("503")
    fake_endpoint.inject("TIMED_OUT", seconds=0.1)
    result = send_preview(client_app, text="This one gets through.").get(timeout=120)
    assert result["attempts"] == 4 and result["backend"] == "runpod"

    fake_endpoint.pause()  # connection refused until it comes back
    pending = send_preview(client_app, text="The endpoint comes back.")
    wait_for(lambda: "cannot connect: connection refused" in worker.tail(), 60, what="a refused attempt")
    fake_endpoint.resume()
    result = pending.get(timeout=120)
    assert result["attempts"] >= 2 and clip_of(result)[1] == 16000


def test_without_an_endpoint_previews_run_locally(start_worker, client_app: Celery,
                                                  fake_endpoint: FakeServerless) -> None:
    worker = start_worker("preview,control", name="control")
    result = send_preview(client_app, text=TEXT).get(timeout=180)
    audio, rate = clip_of(result)
    assert result["duration_s"] == pytest.approx(len(audio) / rate, abs=1e-3) and len(audio) > rate
    assert (result["backend"], result["cost_usd"], result["job_id"]) == ("local", 0.0, None)
    assert result["execution_ms"] > 0 and fake_endpoint.submitted == 0
    assert torch_loaded(worker.proc.pid)  # the fallback is the one path that loads the model
    assert send_preview(client_app, text=TEXT).get(timeout=60)["cached"] is True
