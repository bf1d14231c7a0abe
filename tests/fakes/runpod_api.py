"""A loopback fake of RunPod's GraphQL API, for the unmodified `runpod` SDK (via RUNPOD_API_BASE_URL).

It parses the query strings the SDK really sends (runpod/api/queries and mutations, v1.12): gpuTypes
(all, and by id with prices), myself{pods}, myself{networkVolumes}, myself{endpoints}, pod(input),
podFindAndDeployOnDemand, podRentInterruptable (the same input plus bidPerGpu), podTerminate, podStop. Pods
have no runtime (booting) until `boot_s` after creation, then RUNNING; costPerHr comes from the GPU type and
cloud type, or is the bid of an interruptible pod. A wrong Bearer key gets HTTP 401.

Placement: data centers each have a host CUDA version; a create lands in its `dataCenterId` (or the first
data center that fits) among those whose CUDA is in `allowedCudaVersions`, with capacity per GPU type and data
center (`set_capacity`); nothing fitting is RunPod's "no longer any instances available" error. A
`networkVolumeId` must name a volume of the account (`add_network_volume`) in that data center, a
`templateId` a template (`add_template`). `preempt` stops an interruptible pod as an outbid one is stopped.
Error texts other than the capacity message are this fake's wording.

Faults are injected one by one (`inject`) or at random (`random_faults`): HTTP 500 with an HTML body,
HTTP 503 with GraphQL errors, slow and hung answers, 401, the capacity QueryError, and `after500` (the
mutation happens, the answer is lost). `on_create`/`on_terminate` hooks let a test run real workers.

It also answers without an error but not the whole truth, as RunPod can: `inject("omit_all", "pods")` lists
no pod at all, `hide(pod_id)` leaves one pod out of listings, `echo_env = False` lists pods without their env
(so without the marker), `null_runtime(pod_id)` lists a running pod with `runtime: null`.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CAPACITY_MESSAGE = ("There are no longer any instances available with the requested specifications. "
                    "Please refresh and try again.")
FAULT_KINDS = ("http500", "http503", "slow", "hang", "unauthorized", "after500", "capacity")
#: Answers that are well-formed and wrong (not part of the random storm's error kinds).
LIE_KINDS = ("omit_all",)


@dataclass(frozen=True)
class FakeGpu:
    id: str
    display_name: str
    memory_gb: int
    secure_price: float
    community_price: float


DEFAULT_GPUS = (
    FakeGpu("NVIDIA RTX A4000", "RTX A4000", 16, 0.34, 0.24),
    FakeGpu("NVIDIA GeForce RTX 3090", "RTX 3090", 24, 0.43, 0.22),
    FakeGpu("NVIDIA A100 80GB PCIe", "A100 80GB", 80, 1.89, 1.19),
)
#: Data center -> the CUDA version of its hosts' drivers.
DEFAULT_DATA_CENTERS = {"EU-RO-1": "12.8", "US-KS-2": "12.4", "CA-MTL-1": "12.2"}


@dataclass
class FakePod:
    id: str
    name: str
    image_name: str
    gpu: FakeGpu
    cloud_type: str
    env: dict[str, str]
    docker_args: str
    cost_per_hr: float
    created_at: float
    container_disk_gb: int = 10
    volume_gb: int = 0
    desired_status: str = "RUNNING"
    data_center: str = ""
    interruptible: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self, now: float, boot_s: float, echo_env: bool = True, null_runtime: bool = False) -> dict[str, Any]:
        up = self.desired_status == "RUNNING" and now - self.created_at >= boot_s and not null_runtime
        return {
            "id": self.id, "containerDiskInGb": self.container_disk_gb, "costPerHr": self.cost_per_hr,
            "desiredStatus": self.desired_status, "dockerArgs": self.docker_args, "dockerId": None,
            "env": [f"{k}={v}" for k, v in self.env.items()] if echo_env else [], "gpuCount": 1,
            "imageName": self.image_name,
            "lastStatusChange": f"Rented by User: {time.ctime(self.created_at)}", "machineId": f"m-{self.id}",
            "memoryInGb": 31, "name": self.name, "podType": "INTERRUPTABLE" if self.interruptible else "RESERVED",
            "port": None, "ports": "",
            "uptimeSeconds": int(now - self.created_at - boot_s) if up else 0, "vcpuCount": 4,
            "volumeInGb": self.volume_gb, "volumeMountPath": "/runpod-volume",
            "runtime": {"ports": []} if up else None,
            "machine": {"gpuDisplayName": self.gpu.display_name},
        }


@dataclass
class _Fault:
    kind: str
    operation: str | None
    times: int
    delay_s: float


class GraphQLSyntaxError(ValueError):
    pass


# --- a small parser for the GraphQL input values the SDK writes ----------------------------------------
_TOKEN = re.compile(r'\s*(?:(?P<punct>[{}\[\]:,()])|(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)'
                    r'|(?P<name>[_A-Za-z][_0-9A-Za-z]*))')


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise GraphQLSyntaxError(f"Syntax Error: Unexpected character {text[pos:].strip()[:1]!r}.")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)  # type: ignore[arg-type]
        if kind == "string":
            value = json.loads(value)  # GraphQL string escapes are JSON's
        out.append((kind, value))  # type: ignore[arg-type]
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("eof", None)

    def take(self, punct: str | None = None) -> tuple[str, Any]:
        token = self.peek()
        if punct is not None and token != ("punct", punct):
            raise GraphQLSyntaxError(f"Syntax Error: Expected {punct!r}, found {token[1]!r}.")
        self.pos += 1
        return token

    def value(self) -> Any:
        kind, value = self.peek()
        if (kind, value) == ("punct", "{"):
            self.take("{")
            obj: dict[str, Any] = {}
            while self.peek() != ("punct", "}"):
                key_kind, key = self.take()
                if key_kind != "name":
                    raise GraphQLSyntaxError(f"Syntax Error: Expected Name, found {key!r}.")
                self.take(":")
                obj[key] = self.value()
                if self.peek() == ("punct", ","):
                    self.take(",")
            self.take("}")
            return obj
        if (kind, value) == ("punct", "["):
            self.take("[")
            items = []
            while self.peek() != ("punct", "]"):
                items.append(self.value())
                if self.peek() == ("punct", ","):
                    self.take(",")
            self.take("]")
            return items
        self.take()
        if kind == "string":
            return value
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(value, value)
        raise GraphQLSyntaxError(f"Syntax Error: Unexpected {value!r}.")


def parse_input(query: str, field_name: str) -> dict[str, Any]:
    """The `input: {...}` object of `field_name(...)` in `query`, parsed as GraphQL input values."""
    match = re.search(rf"\b{field_name}\s*\(\s*input\s*:", query)
    if not match:
        raise GraphQLSyntaxError(f"Syntax Error: {field_name} without input.")
    parser = _Parser(query[match.end():])
    value = parser.value()
    parser.take(")")
    if not isinstance(value, dict):
        raise GraphQLSyntaxError("Syntax Error: input must be an object.")
    return value


_OPERATIONS = (
    ("create", re.compile(r"\bpodFindAndDeployOnDemand\s*\(")),
    ("rent", re.compile(r"\bpodRentInterruptable\s*\(")),
    ("terminate", re.compile(r"\bpodTerminate\s*\(")),
    ("stop", re.compile(r"\bpodStop\s*\(")),
    ("pod", re.compile(r"\bpod\s*\(\s*input")),
    ("pods", re.compile(r"\bmyself\s*\{\s*pods\b")),
    ("endpoints", re.compile(r"\bmyself\s*\{\s*endpoints\b")),
    ("user", re.compile(r"\bmyself\s*\{")),
    ("gpu", re.compile(r"\bgpuTypes\s*\(\s*input")),
    ("gpus", re.compile(r"\bgpuTypes\s*\{")),
)


class FakeRunPod:
    """The fake API server. Use as a context manager; point RUNPOD_API_BASE_URL at `.url`."""

    def __init__(self, api_key: str = "fake-runpod-key", gpus: tuple[FakeGpu, ...] = DEFAULT_GPUS,
                 boot_s: float = 0.5, hang_s: float = 5.0, slow_s: float = 0.3,
                 data_centers: dict[str, str] | None = None) -> None:
        self.api_key = api_key
        self.gpus = {g.id: g for g in gpus}
        self.data_centers = dict(DEFAULT_DATA_CENTERS if data_centers is None else data_centers)
        self.network_volumes: dict[str, dict[str, Any]] = {}
        self.templates: set[str] = set()
        self.endpoints: list[dict[str, Any]] = []
        self.boot_s = boot_s
        self.hang_s = hang_s
        self.slow_s = slow_s
        self.pods: dict[str, FakePod] = {}
        self.calls: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.queries: list[str] = []
        self.on_create: Callable[[FakePod], None] | None = None
        self.on_terminate: Callable[[FakePod], None] | None = None
        self._capacity: dict[tuple[str, str | None], int | None] = {}
        self._faults: list[_Fault] = []
        self.echo_env = True  # False: listings and lookups return pods without their env (no marker)
        self._hidden: dict[str, int | None] = {}  # pod id -> listings left to omit it from (None: all)
        self._null_runtime: dict[str, int] = {}  # pod id -> listings left to show it without a runtime
        self._random: tuple[random.Random, float, tuple[str, ...]] | None = None
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeRunPod:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-runpod", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeRunPod:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- test controls ------------------------------------------------------------------------------
    def inject(self, kind: str, operation: str | None = None, times: int = 1, delay_s: float | None = None) -> None:
        """The next `times` requests of `operation` (any if None) get fault `kind` (see FAULT_KINDS, LIE_KINDS)."""
        assert kind in FAULT_KINDS + LIE_KINDS, kind
        delay = delay_s if delay_s is not None else (self.hang_s if kind == "hang" else self.slow_s)
        with self._lock:
            self._faults.append(_Fault(kind, operation, times, delay))

    def random_faults(self, rng: random.Random | None, rate: float = 0.0,
                      kinds: tuple[str, ...] = FAULT_KINDS) -> None:
        """Each request gets a random fault of `kinds` with probability `rate`; None turns it off."""
        with self._lock:
            self._random = None if rng is None else (rng, rate, kinds)

    def set_capacity(self, gpu_type: str, available: int | None, data_center: str | None = None) -> None:
        """How many more pods of `gpu_type` can be created, in `data_center` or (None) in all of them
        together (None: unlimited; 0: the capacity error)."""
        with self._lock:
            self._capacity[(gpu_type, data_center)] = available

    def add_network_volume(self, volume_id: str, data_center: str, name: str = "weights", size: int = 50) -> None:
        with self._lock:
            self.network_volumes[volume_id] = {"id": volume_id, "name": name, "size": size,
                                               "dataCenterId": data_center}

    def add_template(self, template_id: str) -> None:
        with self._lock:
            self.templates.add(template_id)

    def add_endpoint(self, endpoint_id: str, **fields: Any) -> None:
        """An endpoint as `myself { endpoints }` lists it (get_endpoints)."""
        record = {"id": endpoint_id, "name": endpoint_id, "gpuIds": "AMPERE_16", "idleTimeout": 5, "workersMax": 3,
                  "workersMin": 0, "workersStandby": 0, "templateId": "tpl", "networkVolumeId": None,
                  "locations": None, "scalerType": "QUEUE_DELAY", "scalerValue": 4, "type": "QB", "gpuCount": 1,
                  "aiKey": None, "userId": "user-1", "version": 0, "env": [], "createdAt": None,
                  "networkVolume": None} | fields
        with self._lock:
            self.endpoints.append(record)

    def preempt(self, pod_id: str) -> None:
        """An interruptible pod outbid: RunPod stops it (desiredStatus EXITED)."""
        with self._lock:
            pod = self.pods[pod_id]
            assert pod.interruptible, "only interruptible pods are preempted"
            pod.desired_status = "EXITED"

    def hide(self, pod_id: str, times: int | None = None) -> None:
        """Leave the pod out of the next `times` listings (None: every listing); lookups by id still find it."""
        with self._lock:
            self._hidden[pod_id] = times

    def null_runtime(self, pod_id: str, times: int = 1) -> None:
        """List the pod with `runtime: null` the next `times` times, as if its container were not up."""
        with self._lock:
            self._null_runtime[pod_id] = times

    def add_pod(self, name: str, env: dict[str, str], gpu_type: str = "NVIDIA RTX A4000",
                cloud_type: str = "SECURE", created_at: float | None = None) -> FakePod:
        """A pod created behind the scaler's back (an orphan, or someone else's)."""
        with self._lock:
            pod = self._new_pod(name, "img", self.gpus[gpu_type], cloud_type, env, "", created_at)
        return pod

    def live_pods(self) -> list[FakePod]:
        with self._lock:
            return list(self.pods.values())

    def running_pods(self) -> list[FakePod]:
        now = time.time()
        return [p for p in self.live_pods() if p.to_json(now, self.boot_s)["runtime"] is not None]

    # --- the server -----------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        if request.path != "/graphql":
            return self._send(request, 404, {"errors": [{"message": "Not found"}]})
        try:
            query = json.loads(body)["query"]
        except (ValueError, KeyError, TypeError):
            return self._send(request, 400, {"errors": [{"message": "Must provide query string."}]})
        operation = next((name for name, pattern in _OPERATIONS if pattern.search(query)), "unknown")
        with self._lock:
            self.calls[operation] += 1
            self.queries.append(query)
            del self.queries[:-200]
            fault = self._take_fault(operation)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._send(request, 401, {"error": "Unauthorized"})
        if fault is not None:
            kind = fault.kind
            if kind == "unauthorized":
                return self._send(request, 401, {"error": "Unauthorized"})
            if kind == "http500":
                return self._send_raw(request, 500, b"<html><body>500 Internal Server Error</body></html>",
                                      "text/html")
            if kind == "http503":
                return self._send(request, 503, {"errors": [{"message": "Service Unavailable"}]})
            if kind in ("slow", "hang"):
                self._release.wait(fault.delay_s)
            if kind == "capacity":
                return self._send(request, 200, {"errors": [{"message": CAPACITY_MESSAGE}], "data": None})
            if kind == "omit_all":
                return self._send(request, 200, {"data": {"myself": {"pods": []}}})
        try:
            status, answer = self._answer(operation, query)
        except GraphQLSyntaxError as exc:
            status, answer = 400, {"errors": [{"message": str(exc)}]}
        if fault is not None and fault.kind == "after500":
            return self._send_raw(request, 500, b"upstream timed out", "text/plain")
        self._send(request, status, answer)

    def _take_fault(self, operation: str) -> _Fault | None:
        for fault in self._faults:
            if fault.operation in (None, operation) and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return self._count(fault)
        if self._random is not None:
            rng, rate, kinds = self._random
            if rng.random() < rate:
                usable = [k for k in kinds if (k != "capacity" or operation in ("create", "rent"))
                          and (k not in LIE_KINDS or operation == "pods")]
                kind = rng.choice(usable)
                delay = rng.uniform(0.1, self.hang_s) if kind == "hang" else self.slow_s
                return self._count(_Fault(kind, operation, 1, delay))
        return None

    def _count(self, fault: _Fault) -> _Fault:
        self.faults_injected[fault.kind] += 1
        return fault

    def _answer(self, operation: str, query: str) -> tuple[int, dict[str, Any]]:
        now = time.time()
        with self._lock:
            if operation == "gpus":
                types = [{"id": g.id, "displayName": g.display_name, "memoryInGb": g.memory_gb}
                         for g in self.gpus.values()]
                return 200, {"data": {"gpuTypes": types}}
            if operation == "gpu":
                gpu_id = parse_input(query, "gpuTypes").get("id")
                gpu = self.gpus.get(gpu_id)  # type: ignore[arg-type]
                return 200, {"data": {"gpuTypes": [self._gpu_json(gpu)] if gpu else []}}
            if operation == "pods":
                return 200, {"data": {"myself": {"pods": [self._listed(p, now) for p in self.pods.values()
                                                          if not self._omitted(p.id)]}}}
            if operation == "user":
                return 200, {"data": {"myself": {"id": "user-1", "pubKey": "",
                                                 "networkVolumes": list(self.network_volumes.values())}}}
            if operation == "endpoints":
                return 200, {"data": {"myself": {"endpoints": [dict(e) for e in self.endpoints]}}}
            if operation == "pod":
                pod = self.pods.get(parse_input(query, "pod").get("podId"))  # type: ignore[arg-type]
                return 200, {"data": {"pod": pod.to_json(now, self.boot_s, self.echo_env) if pod else None}}
            if operation == "create":
                return self._create(parse_input(query, "podFindAndDeployOnDemand"), "podFindAndDeployOnDemand")
            if operation == "rent":
                return self._create(parse_input(query, "podRentInterruptable"), "podRentInterruptable")
            if operation == "terminate":
                pod = self.pods.pop(parse_input(query, "podTerminate").get("podId"), None)  # type: ignore[arg-type]
                if pod is None:
                    return 200, {"errors": [{"message": "Pod not found"}], "data": {"podTerminate": None}}
                if self.on_terminate:
                    self.on_terminate(pod)
                return 200, {"data": {"podTerminate": None}}
            if operation == "stop":
                pod = self.pods.get(parse_input(query, "podStop").get("podId"))  # type: ignore[arg-type]
                if pod is None:
                    return 200, {"errors": [{"message": "Pod not found"}], "data": None}
                pod.desired_status = "EXITED"
                return 200, {"data": {"podStop": {"id": pod.id, "desiredStatus": "EXITED"}}}
        return 400, {"errors": [{"message": "Cannot query: unknown operation"}]}

    def _omitted(self, pod_id: str) -> bool:
        if pod_id not in self._hidden:
            return False
        left = self._hidden[pod_id]
        if left is not None:
            if left <= 1:
                del self._hidden[pod_id]
            else:
                self._hidden[pod_id] = left - 1
        return True

    def _listed(self, pod: FakePod, now: float) -> dict[str, Any]:
        glitch = self._null_runtime.get(pod.id, 0) > 0
        if glitch:
            self._null_runtime[pod.id] -= 1
        return pod.to_json(now, self.boot_s, self.echo_env, null_runtime=glitch)

    def _create(self, spec: dict[str, Any], mutation: str) -> tuple[int, dict[str, Any]]:
        spot = mutation == "podRentInterruptable"
        input_type = "PodRentInterruptableInput" if spot else "PodFindAndDeployOnDemandInput"
        required = ("name", "imageName", "gpuTypeId", "cloudType") + (("bidPerGpu",) if spot else ())
        for name in required:
            if name not in spec:
                return 400, {"errors": [{"message": f"Field {name} of {input_type} is required"}]}
        gpu = self.gpus.get(spec["gpuTypeId"])
        if gpu is None:
            return 200, {"errors": [{"message": "GPU type not found"}], "data": None}
        if spec["cloudType"] not in ("ALL", "SECURE", "COMMUNITY"):
            return 400, {"errors": [{"message": f"Value {spec['cloudType']!r} does not exist in CloudTypeEnum"}]}
        bid = spec.get("bidPerGpu")
        if bid is not None:
            if not isinstance(bid, int | float):
                return 400, {"errors": [{"message": f"Float cannot represent a non numeric value: {bid!r}"}]}
            minimum = self._gpu_json(gpu)["lowestPrice"]["minimumBidPrice"]
            if bid < minimum:
                return 200, {"errors": [{"message": f"Bid {bid} is below the minimum bid {minimum}"}], "data": None}
        template = spec.get("templateId")
        if template is not None and template not in self.templates:
            return 200, {"errors": [{"message": f"Template {template} not found"}], "data": None}
        cuda = spec.get("allowedCudaVersions")
        if cuda is not None and (not isinstance(cuda, list) or not all(isinstance(v, str) for v in cuda)):
            return 400, {"errors": [{"message": "allowedCudaVersions must be a list of strings"}]}
        center = spec.get("dataCenterId")
        if center is not None and center not in self.data_centers:
            return 200, {"errors": [{"message": f"Data center {center} not found"}], "data": None}
        volume_id = spec.get("networkVolumeId")
        if volume_id is not None:
            volume = self.network_volumes.get(volume_id)
            if volume is None:
                return 200, {"errors": [{"message": f"Network volume {volume_id} not found"}], "data": None}
            if center is not None and center != volume["dataCenterId"]:
                return 200, {"errors": [{"message": f"Network volume {volume_id} is in {volume['dataCenterId']}, "
                                                    f"not {center}"}], "data": None}
            center = volume["dataCenterId"]
        placed = self._place(gpu.id, [center] if center else list(self.data_centers), cuda)
        if placed is None:
            return 200, {"errors": [{"message": CAPACITY_MESSAGE}], "data": {mutation: None}}
        env = {item["key"]: item["value"] for item in spec.get("env") or []}
        pod = self._new_pod(spec["name"], spec["imageName"], gpu, spec["cloudType"], env,
                            spec.get("dockerArgs") or "", None, spec.get("containerDiskInGb") or 10,
                            spec.get("volumeInGb") or 0)
        pod.data_center = placed
        if bid is not None:
            pod.interruptible, pod.cost_per_hr = True, round(float(bid), 4)
        pod.extra = {k: v for k, v in spec.items() if k not in ("env",)}
        if self.on_create:
            self.on_create(pod)
        return 200, {"data": {mutation: {
            "id": pod.id, "imageName": pod.image_name, "env": [f"{k}={v}" for k, v in env.items()],
            "machineId": f"m-{pod.id}", "machine": {"podHostId": f"{pod.id}-host"}}}}

    def _place(self, gpu_id: str, centers: list[str], allowed_cuda: list[str] | None) -> str | None:
        """The first data center with hosts of an allowed CUDA version and capacity left; takes one unit."""
        total = self._capacity.get((gpu_id, None))
        if total is not None and total <= 0:
            return None
        for center in centers:
            if allowed_cuda is not None and self.data_centers[center] not in allowed_cuda:
                continue
            left = self._capacity.get((gpu_id, center))
            if left is not None and left <= 0:
                continue
            if left is not None:
                self._capacity[(gpu_id, center)] = left - 1
            if total is not None:
                self._capacity[(gpu_id, None)] = total - 1
            return center
        return None

    def _new_pod(self, name: str, image: str, gpu: FakeGpu, cloud_type: str, env: dict[str, str],
                 docker_args: str, created_at: float | None, disk: int = 10, volume: int = 0) -> FakePod:
        price = gpu.community_price if cloud_type == "COMMUNITY" else gpu.secure_price
        pod = FakePod(id=secrets.token_hex(7), name=name, image_name=image, gpu=gpu, cloud_type=cloud_type,
                      env=env, docker_args=docker_args, cost_per_hr=price,
                      created_at=time.time() if created_at is None else created_at,
                      container_disk_gb=disk, volume_gb=volume)
        self.pods[pod.id] = pod
        return pod

    @staticmethod
    def _gpu_json(gpu: FakeGpu) -> dict[str, Any]:
        return {
            "maxGpuCount": 8, "id": gpu.id, "displayName": gpu.display_name, "manufacturer": "Nvidia",
            "memoryInGb": gpu.memory_gb, "cudaCores": 0, "secureCloud": True, "communityCloud": True,
            "securePrice": gpu.secure_price, "communityPrice": gpu.community_price,
            "oneMonthPrice": None, "threeMonthPrice": None, "oneWeekPrice": None,
            "communitySpotPrice": round(gpu.community_price / 2, 3), "secureSpotPrice": round(gpu.secure_price / 2, 3),
            "lowestPrice": {"minimumBidPrice": round(gpu.community_price / 2, 3),
                            "uninterruptablePrice": gpu.community_price},
        }

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        FakeRunPod._send_raw(request, status, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _send_raw(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a hung answer past its timeout)


@contextmanager
def running_fake(**kwargs: Any) -> Iterator[FakeRunPod]:
    fake = FakeRunPod(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
