"""The endpoint client against the loopback fake, through the unmodified SDK: every fault path."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import runpod

from tasks.endpoint import Attempt, EndpointError, JobRead, PreviewEndpoint
from tests.fakes.runpod_serverless import FakeServerless
from tests.support.processes import free_port

HELLO = {"text": "Hello there.", "voice": None, "format": "wav"}


@pytest.fixture
def client(fake_endpoint: FakeServerless, monkeypatch: pytest.MonkeyPatch) -> Callable[..., PreviewEndpoint]:
    monkeypatch.setattr(runpod, "endpoint_url_base", fake_endpoint.url)

    def build(timeout_s: float = 20, max_retries: int = 2, api_key: str = fake_endpoint.api_key,
              execution_timeout_s: float | None = None) -> PreviewEndpoint:
        return PreviewEndpoint(fake_endpoint.endpoint_id, api_key, timeout_s, max_retries, execution_timeout_s)

    return build


def test_a_preview_comes_back_with_runpods_timings(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    fake_endpoint.inject("cold", seconds=0.3)
    seen: list[Attempt] = []
    outcome = client().call(HELLO, after_attempt=seen.append)
    assert outcome.output["format"] == "wav" and "audio_b64" in outcome.output
    assert outcome.delay_ms >= 300 and outcome.execution_ms > 0 and outcome.job_id in fake_endpoint.jobs
    assert [a.status for a in seen] == ["COMPLETED"] and seen[0].execution_ms == outcome.execution_ms


@pytest.mark.parametrize("fault,times,statuses", [
    ("429", 2, ["NOT_SUBMITTED", "NOT_SUBMITTED", "COMPLETED"]),
    ("500", 1, ["NOT_SUBMITTED", "COMPLETED"]),
    ("503", 2, ["NOT_SUBMITTED", "NOT_SUBMITTED", "COMPLETED"]),
    ("FAILED", 1, ["FAILED", "COMPLETED"]),
    ("TIMED_OUT", 2, ["TIMED_OUT", "TIMED_OUT", "COMPLETED"]),
])
def test_transient_faults_are_retried(client, fake_endpoint: FakeServerless, fault: str, times: int,  # noqa: ANN001
                                      statuses: list[str]) -> None:
    fake_endpoint.inject(fault, times=times, seconds=0.1)
    seen: list[Attempt] = []
    outcome = client().call(HELLO, after_attempt=seen.append)
    assert [a.status for a in seen] == statuses and outcome.attempts == seen
    assert "audio_b64" in outcome.output and fake_endpoint.executed == 1


def test_retry_after_is_honoured(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    fake_endpoint.inject("429", seconds=1.5)
    started = time.monotonic()
    client().call(HELLO)
    assert time.monotonic() - started >= 1.5


@pytest.mark.parametrize("fault,message", [
    ("503", 'last: NOT_SUBMITTED: POST /run: HTTP 503 {"error": "Internal server error"}'),
    ("FAILED", "injected failure: the worker process died"),  # the error Job.output() would drop
    ("TIMED_OUT", "the endpoint's execution timeout ended the job"),
])
def test_retries_are_bounded_and_the_last_error_is_reported(client, fake_endpoint: FakeServerless,  # noqa: ANN001
                                                            fault: str, message: str) -> None:
    fake_endpoint.inject(fault, times=5)
    with pytest.raises(EndpointError, match="no preview after 3 attempts") as info:
        client(max_retries=2).call(HELLO)
    assert message in str(info.value)
    assert fake_endpoint.calls["run"] == 3


def test_a_refused_input_is_not_retried(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    with pytest.raises(EndpointError, match="after 1 attempt; last: FAILED .*invalid input: text: has 5000"):
        client().call({"text": "x" * 5000})
    assert fake_endpoint.calls["run"] == 1


def test_a_cancelled_job_ends_the_call_without_a_retry(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    fake_endpoint.inject("CANCELLED", seconds=0.2)
    started = time.monotonic()
    with pytest.raises(EndpointError, match="CANCELLED .*cancelled on the endpoint"):
        client().call(HELLO)
    assert time.monotonic() - started < 5 and fake_endpoint.calls["run"] == 1


def test_every_job_carries_the_execution_timeout_as_its_runpod_policy(client, fake_endpoint) -> None:  # noqa: ANN001
    outcome = client(execution_timeout_s=90).call(HELLO)
    assert fake_endpoint.jobs[outcome.job_id].policy == {"executionTimeout": 90_000}


def test_a_job_is_read_for_its_bill_whatever_state_it_is_in(client, fake_endpoint) -> None:  # noqa: ANN001
    endpoint = client()
    done = endpoint.call(HELLO)
    fake_endpoint.inject("slow", seconds=20)
    fake_endpoint.inject("lost")
    running, lost = endpoint.endpoint.run({"input": HELLO}), endpoint.endpoint.run({"input": HELLO})
    assert endpoint.read_job(done.job_id) == JobRead("final", "COMPLETED", done.execution_ms)
    assert endpoint.read_job(running.job_id).state == "pending"
    assert endpoint.read_job("no-such-job").state == "gone"
    assert endpoint.read_job(lost.job_id) == JobRead("unreadable", error='HTTP 502 {"error": "Bad Gateway"}')
    assert endpoint.cancel_job(running.job_id) and not endpoint.cancel_job(lost.job_id)
    assert endpoint.read_job(running.job_id).status == "CANCELLED"
    fake_endpoint.pause()
    assert endpoint.read_job(done.job_id) == JobRead("unreadable", error="connection refused")
    fake_endpoint.resume()


def test_a_slow_job_is_cancelled_at_the_timeout(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    fake_endpoint.inject("slow", seconds=30)
    seen: list[Attempt] = []
    started = time.monotonic()
    with pytest.raises(EndpointError, match="no result within PREVIEW_TIMEOUT_SECONDS=1; job cancelled"):
        client(timeout_s=1).call(HELLO, after_attempt=seen.append)
    assert time.monotonic() - started < 5
    job = fake_endpoint.jobs[seen[0].job_id]
    assert job.status == "CANCELLED" and fake_endpoint.calls["cancel"] == 1
    assert seen[0].execution_ms is not None and seen[0].execution_ms >= 900  # what it billed until cancelled
    assert seen[0].read == "final"


def test_a_job_whose_cancel_fails_is_left_open(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    fake_endpoint.inject("late", seconds=3)
    seen: list[Attempt] = []
    with pytest.raises(EndpointError, match="no result within PREVIEW_TIMEOUT_SECONDS=1; the cancel did not get"):
        client(timeout_s=1, max_retries=0).call(HELLO, after_attempt=seen.append)
    assert (seen[0].read, seen[0].execution_ms) == ("pending", None)  # its bill is not known yet
    assert fake_endpoint.jobs[seen[0].job_id].status == "IN_PROGRESS"


def test_connection_refused_is_retried_quickly_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runpod, "endpoint_url_base", f"http://127.0.0.1:{free_port()}/v2")
    started = time.monotonic()
    with pytest.raises(EndpointError, match="after 3 attempts; last: NOT_SUBMITTED: POST /run: cannot connect: "
                                           "connection refused"):
        PreviewEndpoint("preview-test", "key", 20, 2).call(HELLO)
    assert time.monotonic() - started < 5  # the SDK's own http retries (about 30 s) are not in the way


def test_an_endpoint_that_comes_back_is_reached(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    endpoint = client(max_retries=6)
    fake_endpoint.pause()
    threading.Timer(1.0, fake_endpoint.resume).start()
    seen: list[Attempt] = []
    outcome = endpoint.call(HELLO, after_attempt=seen.append)
    assert "audio_b64" in outcome.output and seen[0].error.endswith("connection refused") and len(seen) >= 2


def test_a_wrong_key_is_not_retried(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    with pytest.raises(EndpointError, match="after 1 attempt; last: NOT_SUBMITTED: POST /run: 401 Unauthorized"):
        client(api_key="wrong").call(HELLO)


def test_before_attempt_can_stop_the_retries(client, fake_endpoint: FakeServerless) -> None:  # noqa: ANN001
    class Stop(Exception):
        pass

    def refuse_second(number: int) -> None:
        if number == 2:
            raise Stop

    fake_endpoint.inject("FAILED", times=3)
    with pytest.raises(Stop):
        client().call(HELLO, before_attempt=refuse_second)
    assert fake_endpoint.calls["run"] == 1
