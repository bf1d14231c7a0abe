"""Calls to the RunPod serverless preview endpoint through the runpod SDK: a timeout and bounded retries.

Where the SDK falls short, this module steps in: its session retries plain-http requests only (up to
~30 s of backoff) and https ones never, `Job.output()` drops a FAILED job's `error`, and `Job.stream()`
never ends on CANCELLED. So it submits with `Endpoint.run()` (with the execution timeout as the job's
policy, so RunPod enforces the bound spend is reserved for), polls `/status` itself, cancels a job it
gives up on and re-reads it for its bill, and reports the endpoint's own error text. Only `runpod` and
`requests` are imported here.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import runpod
from requests.adapters import HTTPAdapter

if TYPE_CHECKING:
    from tasks.spend import ReadState

log = logging.getLogger(__name__)

FINAL = ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED")
RETRIED_STATUSES = ("FAILED", "TIMED_OUT")
# The handler's refusals (synth.serverless.INVALID_INPUT): the same input would be refused again.
_REFUSAL = "invalid input: "
_HTTP_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 3.0
_RETRY_AFTER_MAX_S = 10.0


@dataclass
class Attempt:
    """One submission and what became of it. execution_ms None means unknown: count the worst case.

    `read` says how the bill stands: "final" (execution_ms is it), or what a re-read of a job we gave up
    on said ("pending", "gone", "unreadable": the job stays open until its bill is known).
    """

    number: int
    status: str  # a RunPod status, or NOT_SUBMITTED / NO_RESULT (our timeout)
    job_id: str | None = None
    output: Any = None
    error: str | None = None
    retryable: bool = False
    delay_ms: int = 0
    execution_ms: int | None = 0
    retry_after_s: float = 0.0
    read: ReadState = "final"


@dataclass(frozen=True)
class JobRead:
    """What one /status read said about a job: its state for billing, RunPod's status, its executionTime."""

    state: ReadState
    status: str | None = None
    execution_ms: int | None = None
    error: str | None = None


@dataclass
class Outcome:
    output: dict[str, Any]
    job_id: str
    delay_ms: int
    execution_ms: int
    attempts: list[Attempt] = field(default_factory=list)


class EndpointError(Exception):
    """The endpoint gave no preview; the message keeps the endpoint's or the HTTP layer's own words."""


def backoff_s(attempt: int, base_s: float = 0.5, cap_s: float = 8.0, jitter: float = 1.0) -> float:
    """Pause before retry number `attempt` (1, 2, ...): exponential, capped, scaled by `jitter` in [0.5, 1]."""
    return min(cap_s, base_s * 2 ** (attempt - 1)) * jitter


def describe_error(error: object) -> str:
    """A FAILED job's `error` in a line: the SDK sends a handler's exception as a JSON record."""
    if isinstance(error, str):
        try:
            record = json.loads(error)
        except ValueError:
            return error
        if isinstance(record, dict) and "error_message" in record:
            kind = str(record.get("error_type", "")).removeprefix("<class '").removesuffix("'>")
            return f"{kind}: {record['error_message']}" if kind else str(record["error_message"])
        return error
    return json.dumps(error) if error is not None else "no error given"


class PreviewEndpoint:
    """One serverless endpoint, called with a per-attempt timeout and up to `max_retries` retries."""

    def __init__(self, endpoint_id: str, api_key: str, timeout_s: float, max_retries: int,
                 execution_timeout_s: float | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, poll_max_s: float = 0.5) -> None:
        self.endpoint_id = endpoint_id
        # RunPod's job policy: a per-job execution timeout in ms that overrides the endpoint's own setting.
        self.policy = {} if execution_timeout_s is None else {
            "policy": {"executionTimeout": round(execution_timeout_s * 1000)}}
        self.endpoint = runpod.Endpoint(endpoint_id, api_key=api_key)
        # One retry policy for http and https alike: ours, bounded by PREVIEW_MAX_RETRIES.
        session = self.endpoint.rp_client.rp_session
        session.mount("http://", HTTPAdapter())
        session.mount("https://", HTTPAdapter())
        self.client = self.endpoint.rp_client
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.sleep = sleep
        self.clock = clock
        self.poll_max_s = poll_max_s

    def call(self, job_input: dict[str, Any], before_attempt: Callable[[int], None] = lambda n: None,
             after_attempt: Callable[[Attempt], None] = lambda a: None) -> Outcome:
        """The handler's output for `job_input`, or EndpointError after the last attempt.

        `before_attempt` may raise to stop (the spend cap); `after_attempt` sees what each attempt billed.
        """
        attempts: list[Attempt] = []
        for number in range(1, self.max_retries + 2):
            if attempts:
                pause = max(backoff_s(number - 1, jitter=random.uniform(0.5, 1.0)), attempts[-1].retry_after_s)
                self.sleep(pause)
            before_attempt(number)
            attempt = self._attempt(number, job_input)
            attempts.append(attempt)
            after_attempt(attempt)
            if attempt.status == "COMPLETED":
                if not isinstance(attempt.output, dict):
                    raise EndpointError(f"endpoint {self.endpoint_id} job {attempt.job_id} returned "
                                        f"{type(attempt.output).__name__} output, not the handler's object")
                return Outcome(attempt.output, attempt.job_id or "", attempt.delay_ms, attempt.execution_ms or 0,
                               attempts)
            log.warning("preview endpoint %s attempt %d: %s %s", self.endpoint_id, number, attempt.status,
                        attempt.error)
            if not attempt.retryable:
                break
        last = attempts[-1]
        tries = f"{len(attempts)} attempt{'s' if len(attempts) > 1 else ''}"
        raise EndpointError(f"serverless endpoint {self.endpoint_id}: no preview after {tries}; last: "
                            f"{last.status}{f' (job {last.job_id})' if last.job_id else ''}: {last.error}")

    def _attempt(self, number: int, job_input: dict[str, Any]) -> Attempt:
        deadline = self.clock() + self.timeout_s
        try:
            job = self.endpoint.run({"input": job_input} | self.policy)
        except requests.HTTPError as exc:
            response = exc.response
            code = response.status_code if response is not None else 0
            return Attempt(number, "NOT_SUBMITTED", error=f"POST /run: HTTP {code} {_body(response)}",
                           retryable=code in (408, 429) or code >= 500, retry_after_s=_retry_after(response))
        except requests.ConnectionError as exc:
            return Attempt(number, "NOT_SUBMITTED", error=f"POST /run: cannot connect: {_reason(exc)}",
                           retryable=True)
        except requests.Timeout:
            # The job may exist without our knowing its id: assume it billed the worst case.
            return Attempt(number, "NOT_SUBMITTED", error="POST /run: no answer in time", retryable=True,
                           execution_ms=None)
        except RuntimeError as exc:  # the SDK's answer to HTTP 401
            return Attempt(number, "NOT_SUBMITTED", error=f"POST /run: {exc}")
        state = self._poll(job.job_id, deadline)
        if state is None:
            return self._give_up(number, job.job_id)
        status = state["status"]
        attempt = Attempt(number, status, job.job_id, state.get("output"), delay_ms=int(state.get("delayTime") or 0),
                          execution_ms=_execution_ms(state))
        if status == "COMPLETED":
            return attempt
        if status == "CANCELLED":
            attempt.error = "the job was cancelled on the endpoint (not retried: someone stopped it)"
            return attempt
        error = state.get("error")
        if status == "FAILED":
            attempt.error = describe_error(error)
        else:
            attempt.error = "the endpoint's execution timeout ended the job" + (f": {describe_error(error)}"
                                                                                 if error else "")
        attempt.retryable = status in RETRIED_STATUSES and not attempt.error.startswith(_REFUSAL)
        return attempt

    def _poll(self, job_id: str, deadline: float) -> dict[str, Any] | None:
        """The job's final status record, or None at the deadline. Poll errors are waited out, not fatal."""
        # Dense at first (a preview takes about a second), sparse later: RunPod allows 2000 /status per 10 s.
        interval = 0.02
        while True:
            remaining = deadline - self.clock()
            try:
                state = self.client.get(f"{self.endpoint_id}/status/{job_id}",
                                        timeout=max(0.5, min(_HTTP_TIMEOUT_S, remaining)))
                if state.get("status") in FINAL:
                    return state
            except (requests.RequestException, RuntimeError) as exc:
                log.warning("preview job %s: status poll failed: %s", job_id, exc)
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            self.sleep(min(interval, remaining))
            interval = min(interval * 1.25, self.poll_max_s)

    def read_job(self, job_id: str, endpoint_id: str | None = None) -> JobRead:
        """One /status read for the bill: never raises; 404 means RunPod no longer knows the job."""
        try:
            record = self.client.get(f"{endpoint_id or self.endpoint_id}/status/{job_id}", timeout=_READ_TIMEOUT_S)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            return JobRead("gone" if code == 404 else "unreadable", error=f"HTTP {code} {_body(exc.response)}")
        except (requests.RequestException, RuntimeError) as exc:
            return JobRead("unreadable", error=_reason(exc))
        status = record.get("status") if isinstance(record, dict) else None
        if status in FINAL:
            return JobRead("final", status, _execution_ms(record))
        if status is None:
            return JobRead("unreadable", error=f"no status in {str(record)[:200]}")
        return JobRead("pending", status)

    def cancel_job(self, job_id: str, endpoint_id: str | None = None) -> bool:
        """Ask RunPod to stop a job we no longer wait for; False when the request did not get through."""
        try:
            self.client.post(f"{endpoint_id or self.endpoint_id}/cancel/{job_id}", data=None, timeout=3)
        except (requests.RequestException, RuntimeError) as exc:
            log.warning("preview job %s: cancel failed: %s", job_id, exc)
            return False
        return True

    def _give_up(self, number: int, job_id: str) -> Attempt:
        """Our timeout: cancel the job and read what it billed (not known yet: the job stays open)."""
        cancelled = self.cancel_job(job_id)
        read = self.read_job(job_id)
        return Attempt(number, "NO_RESULT", job_id, execution_ms=read.execution_ms if read.state == "final" else None,
                       read=read.state, error=f"no result within PREVIEW_TIMEOUT_SECONDS={self.timeout_s:g}; "
                                              f"{'job cancelled' if cancelled else 'the cancel did not get through'}")


def _execution_ms(record: dict[str, Any]) -> int | None:
    """A final record's executionTime; None (unknown: the worst case is charged) when missing or not a number."""
    try:
        return max(0, int(record["executionTime"]))
    except (KeyError, TypeError, ValueError):
        return None


def _body(response: requests.Response | None) -> str:
    if response is None:
        return ""
    return " ".join(response.text.split())[:200]


def _reason(exc: Exception) -> str:
    text = str(exc)
    return "connection refused" if "Connection refused" in text or "Errno 111" in text else text[:200]


def _retry_after(response: requests.Response | None) -> float:
    try:
        value = float(response.headers.get("Retry-After", 0)) if response is not None else 0.0
    except ValueError:
        return 0.0
    return min(max(value, 0.0), _RETRY_AFTER_MAX_S)
