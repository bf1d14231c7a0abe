"""A loopback fake of RunPod's serverless REST API that the unmodified `runpod` SDK talks to.

Point the SDK at `fake.url` with RUNPOD_ENDPOINT_BASE_URL (read when `runpod` is imported) or
`runpod.endpoint_url_base` (read when a client is built). Routes under `/v2/{endpoint_id}/`: `run`,
`runsync`, `status/{job}`, `stream/{job}`, `cancel/{job}`, `health`, `purge-queue`, with the shapes and
statuses of shared/notes/runpod-sdk.md; a wrong key gets 401, an unknown endpoint or job 404.

Jobs run the project's real handler (e.g. `synth.serverless.make_handler` over the tiny test model)
through the SDK's own `run_job`, on `workers` threads like serverless workers, so the audio is real and
handler errors reach the client in RunPod's shape. A job's `policy.executionTimeout` (ms, more than 5000)
is enforced as RunPod does: a job running longer ends TIMED_OUT. Faults are queued with `inject()`:
- "429", "500", "503": the next /run (or /runsync) request gets that HTTP status;
- "FAILED", "TIMED_OUT": the next job ends so (TIMED_OUT after `seconds` of execution), handler not run;
- "CANCELLED": the next job is cancelled on the endpoint after `seconds` in the queue;
- "slow": the next job runs `seconds` longer; "cold": it waits `seconds` in the queue first;
- "late": like "slow", but a cancel of it fails (HTTP 502): it completes after the client gave up;
- "lost": the job runs, but /status and /cancel about it fail (HTTP 502): its bill can never be read.
`execution_ms` makes the job report that executionTime once final (RunPod's number, not the fake's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runpod.serverless.modules.rp_job import run_job
from runpod.serverless.modules.rp_logger import RunPodLogger

HTTP_FAULTS = ("429", "500", "503")
JOB_FAULTS = ("FAILED", "TIMED_OUT", "CANCELLED", "slow", "cold", "late", "lost")
FINAL = ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED")
_ROUTE = re.compile(r"^/v2/(?P<endpoint>[^/]+)/(?P<action>run|runsync|status|stream|cancel|health|purge-queue)"
                    r"(?:/(?P<job>[^/?]+))?/?$")


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float = 0.0
    execution_ms: int | None = None


@dataclass
class FakeJob:
    id: str
    input: Any
    submitted: float
    fault: Fault | None = None
    policy: dict[str, Any] | None = None
    status: str = "IN_QUEUE"
    started: float | None = None
    finished: float | None = None
    output: Any = None
    error: str | None = None
    streamed: bool = False
    settled: threading.Event = field(default_factory=threading.Event)

    @property
    def execution_timeout_s(self) -> float | None:
        """RunPod's per-job execution timeout, from the job's policy."""
        timeout_ms = (self.policy or {}).get("executionTimeout")
        return None if timeout_ms is None else timeout_ms / 1000

    def answers(self, action: str) -> bool:
        """False when a fault makes RunPod fail requests about this job."""
        kind = self.fault.kind if self.fault is not None else None
        return not (kind == "lost" and action in ("status", "cancel") or kind == "late" and action == "cancel")

    def record(self, execution_ms: int | None) -> dict[str, Any]:
        """The /status body: more fields appear as the job moves on, as on RunPod."""
        if self.fault is not None and self.fault.execution_ms is not None:
            execution_ms = self.fault.execution_ms
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            body["delayTime"] = round((self.started - self.submitted) * 1000)
        elif self.finished is not None:
            body["delayTime"] = round((self.finished - self.submitted) * 1000)
        if self.status in FINAL:
            ran = (self.finished or 0) - self.started if self.started is not None else 0.0
            body["executionTime"] = execution_ms if execution_ms is not None and self.started else round(ran * 1000)
            if self.status == "COMPLETED":
                body["output"] = self.output
            if self.error is not None:
                body["error"] = self.error
        return body


class FakeServerless:
    """RunPod serverless on 127.0.0.1: one endpoint, real handler, countable calls, injectable faults."""

    def __init__(self, handler: Callable[[dict[str, Any]], Any], endpoint_id: str = "preview-test",
                 api_key: str = "fake-runpod-key", workers: int = 1, runsync_wait_s: float = 30.0) -> None:
        self.handler = handler
        self.endpoint_id = endpoint_id
        self.api_key = api_key
        self.runsync_wait_s = runsync_wait_s
        self.workers = workers
        #: when set, every finished job that ran reports this executionTime (to drive the spend cap)
        self.execution_ms: int | None = None
        self.calls: Counter[str] = Counter()
        self.jobs: dict[str, FakeJob] = {}
        self.executed = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fake-serverless")
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self.port = 0
        # The SDK logs every job's whole output at its default DEBUG level: megabytes of base64 per test.
        RunPodLogger().set_level("WARN")

    # --- control --------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The SDK's `endpoint_url_base` for this fake."""
        return f"http://127.0.0.1:{self.port}/v2"

    def start(self) -> FakeServerless:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._request_handler())
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._server = server
        return self

    def pause(self) -> None:
        """Stop listening: connections are refused until resume(); jobs and counts are kept."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            open_connections, self._connections = list(self._connections), set()
        for connection in open_connections:  # kept-alive connections would otherwise still be served
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def resume(self) -> None:
        self.start()

    def stop(self) -> None:
        self.pause()
        with self._lock:
            for job in self.jobs.values():
                if job.status not in FINAL:
                    self._finish(job, "CANCELLED")
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> FakeServerless:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def inject(self, kind: str, times: int = 1, seconds: float = 0.0, execution_ms: int | None = None) -> None:
        if kind not in HTTP_FAULTS + JOB_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(HTTP_FAULTS + JOB_FAULTS)}")
        with self._lock:
            self._faults.extend(Fault(kind, seconds, execution_ms) for _ in range(times))

    @property
    def submitted(self) -> int:
        """Jobs created through /run and /runsync (what a cache hit must not add to)."""
        return self.calls["run"] + self.calls["runsync"] - self.calls["refused"]

    # --- jobs -----------------------------------------------------------------------------------------
    def _take_fault(self, http: bool) -> Fault | None:
        with self._lock:
            if self._faults and (self._faults[0].kind in HTTP_FAULTS) == http:
                return self._faults.popleft()
        return None

    def _submit(self, job_input: Any, policy: dict[str, Any] | None = None) -> FakeJob:
        job = FakeJob(id=f"{uuid.uuid4()}-u1", input=job_input, submitted=time.monotonic(),
                      fault=self._take_fault(http=False), policy=policy)
        with self._lock:
            self.jobs[job.id] = job
        self._pool.submit(self._work, job)
        return job

    def _finish(self, job: FakeJob, status: str, output: Any = None, error: str | None = None) -> None:
        """Move a job to a final status; the caller holds the lock."""
        if job.status in FINAL:
            return
        job.status, job.output, job.error, job.finished = status, output, error, time.monotonic()
        job.settled.set()

    def _work(self, job: FakeJob) -> None:
        fault = job.fault
        if fault is not None and fault.kind in ("cold", "CANCELLED"):
            job.settled.wait(fault.seconds)
        with self._lock:
            if fault is not None and fault.kind == "CANCELLED":
                self._finish(job, "CANCELLED")
            if job.status in FINAL:
                return
            job.status, job.started = "IN_PROGRESS", time.monotonic()
        if fault is not None and fault.kind in ("FAILED", "TIMED_OUT"):
            job.settled.wait(fault.seconds if fault.kind == "TIMED_OUT" else 0.01)
            with self._lock:
                error = "injected failure: the worker process died" if fault.kind == "FAILED" else None
                self._finish(job, fault.kind, error=error)
            return
        if fault is not None and fault.kind in ("slow", "late"):
            limit = job.execution_timeout_s
            if job.settled.wait(fault.seconds if limit is None else min(fault.seconds, limit)):
                return  # cancelled meanwhile
            if limit is not None and fault.seconds >= limit:
                with self._lock:
                    self._finish(job, "TIMED_OUT")  # RunPod stops a job at its execution timeout
                return
        result = asyncio.run(run_job(self.handler, {"id": job.id, "input": job.input}))
        with self._lock:
            self.executed += 1
            if result.get("error"):
                self._finish(job, "FAILED", error=str(result["error"]))
            else:
                self._finish(job, "COMPLETED", output=result.get("output"))

    def _health(self) -> dict[str, Any]:
        with self._lock:
            statuses = Counter(job.status for job in self.jobs.values())
        running = statuses["IN_PROGRESS"]
        return {"jobs": {"completed": statuses["COMPLETED"], "failed": statuses["FAILED"],
                         "inProgress": running, "inQueue": statuses["IN_QUEUE"], "retried": 0},
                "workers": {"idle": max(0, self.workers - running), "running": running}}

    # --- HTTP -----------------------------------------------------------------------------------------
    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's session expects

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake._connections.add(self.connection)

            def finish(self) -> None:
                with fake._lock:
                    fake._connections.discard(self.connection)
                super().finish()

            def do_GET(self) -> None:  # noqa: N802
                self._route("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._route("POST")

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                match = _ROUTE.match(self.path.split("?", 1)[0])
                if match is None:
                    return self._send(404, {"error": f"no route {method} {self.path}"})
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, {"error": "Unauthorized"})
                if match["endpoint"] != fake.endpoint_id:
                    return self._send(404, {"error": f"endpoint {match['endpoint']} not found"})
                action, job_id = match["action"], match["job"]
                expected = "GET" if action in ("status", "stream", "health") else "POST"
                if method != expected or (job_id is None) != (action in ("run", "runsync", "health",
                                                                          "purge-queue")):
                    return self._send(405 if method != expected else 404, {"error": "bad route"})
                with fake._lock:
                    fake.calls[action] += 1
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    return self._send(400, {"error": "body is not JSON"})
                getattr(self, "_" + action.replace("-", "_"))(body, job_id)

            def _run(self, body: Any, _: None) -> None:
                if self._refused(body):
                    return
                job = fake._submit(body["input"], body.get("policy"))
                self._send(200, {"id": job.id, "status": "IN_QUEUE"})

            def _runsync(self, body: Any, _: None) -> None:
                if self._refused(body):
                    return
                job = fake._submit(body["input"], body.get("policy"))
                job.settled.wait(fake.runsync_wait_s)
                with fake._lock:
                    record = job.record(fake.execution_ms)
                self._send(200, record)

            def _refused(self, body: Any) -> bool:
                fault = fake._take_fault(http=True)
                if fault is not None:
                    with fake._lock:
                        fake.calls["refused"] += 1
                    headers = {"Retry-After": f"{fault.seconds:g}"} if fault.kind == "429" and fault.seconds else {}
                    message = "Too many requests" if fault.kind == "429" else "Internal server error"
                    self._send(int(fault.kind), {"error": message}, headers)
                    return True
                problem = _body_problem(body)
                if problem is not None:
                    with fake._lock:
                        fake.calls["refused"] += 1
                    self._send(400, {"error": problem})
                    return True
                return False

            def _job(self, job_id: str, action: str) -> FakeJob | None:
                job = fake.jobs.get(job_id)
                if job is None:
                    self._send(404, {"error": f"job {job_id} not found"})
                elif not job.answers(action):
                    self._send(502, {"error": "Bad Gateway"})
                    return None
                return job

            def _status(self, _: Any, job_id: str) -> None:
                if (job := self._job(job_id, "status")) is not None:
                    with fake._lock:
                        record = job.record(fake.execution_ms)
                    self._send(200, record)

            def _stream(self, _: Any, job_id: str) -> None:
                if (job := self._job(job_id, "stream")) is not None:
                    with fake._lock:
                        stream = []
                        if job.status == "COMPLETED" and not job.streamed:
                            job.streamed = True
                            stream = [{"output": job.output}]
                        status = job.status
                    # CANCELLED with an empty stream: the SDK's Job.stream() polls this forever.
                    self._send(200, {"status": status, "stream": stream})

            def _cancel(self, _: Any, job_id: str) -> None:
                if (job := self._job(job_id, "cancel")) is not None:
                    with fake._lock:
                        fake._finish(job, "CANCELLED")
                        status = job.status
                    self._send(200, {"id": job.id, "status": status})

            def _health(self, _: Any, __: None) -> None:
                self._send(200, fake._health())

            def _purge_queue(self, _: Any, __: None) -> None:
                with fake._lock:
                    queued = [job for job in fake.jobs.values() if job.status == "IN_QUEUE"]
                    for job in queued:
                        fake._finish(job, "CANCELLED")
                self._send(200, {"removed": len(queued), "status": "completed"})

        return Handler


def _body_problem(body: Any) -> str | None:
    """RunPod's checks of a /run or /runsync body: an `input`, and a policy it accepts."""
    if not isinstance(body, dict) or "input" not in body:
        return "body must be an object with 'input'"
    policy = body.get("policy")
    if policy is None:
        return None
    timeout = policy.get("executionTimeout") if isinstance(policy, dict) else None
    if not isinstance(policy, dict) or set(policy) - {"executionTimeout", "ttl", "lowPriority"}:
        return "policy: only executionTimeout, ttl and lowPriority are known"
    if timeout is not None and (not isinstance(timeout, int) or timeout <= 5000):
        return "policy.executionTimeout must be an integer above 5000 (ms)"
    return None
