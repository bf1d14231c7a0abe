"""The one Provider interface: list, look up, price, create, terminate. One file per implementation."""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from scaler.errors import InvalidProviderInput, ProviderError, ProviderUnavailable
from settings import QUEUE_GPU

#: Environment variable that marks a worker as the scaler's: `<name prefix>/<deployment id>`.
MARKER_ENV = "AUDIOBOOK_SCALER_POOL"
#: A pool worker's Celery nodename is `gpu-<worker name>@<host>`: the name joins it to its pod/process.
NODENAME_PREFIX = "gpu-"

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

InstanceStatus = Literal["starting", "running", "exited"]
T = TypeVar("T")


@dataclass(frozen=True)
class Instance:
    """One worker as its provider lists it (a RunPod pod, a local process)."""

    id: str
    name: str
    usd_per_hour: float
    status: InstanceStatus  # starting: no runtime yet; exited: stopped, will never serve
    gpu_type: str = ""
    created_at: float | None = None
    deployment: str | None = None  # the deployment its marker names; None: no marker (or not echoed)


#: A lookup's answer: the instance, None when the provider says it is gone, or the error of the call.
Lookup = Instance | None | ProviderError


class Provider(ABC):
    """Where pool workers come from. Implementations raise scaler.errors.ProviderError subclasses only."""

    name: str = "provider"

    @abstractmethod
    def gpu_types(self) -> list[str]:
        """GPU types to create, in order of preference."""

    @abstractmethod
    def price(self, gpu_type: str) -> float:
        """USD per hour of one worker of `gpu_type` (at least what it will really cost)."""

    @abstractmethod
    def list_instances(self) -> list[Instance]:
        """Every worker whose name carries this scaler's prefix, with the deployment its marker names.

        A listing may leave out workers that exist: the scaler looks those it knows up one by one."""

    @abstractmethod
    def get_instance(self, instance_id: str) -> Instance | None:
        """One worker by id; None only when the provider says it is gone (terminated or never existed)."""

    @abstractmethod
    def create(self, name: str, gpu_type: str) -> Instance:
        """Start one worker named `name` consuming only `gpu-long` with concurrency 1."""

    @abstractmethod
    def terminate(self, instance_id: str) -> None:
        """Stop a worker for good. Called only on drained or never-registered workers."""

    def read_many(self, gpu_types: list[str], instance_ids: list[str],
                  deadline_s: float) -> tuple[dict[str, float | ProviderError], dict[str, Lookup]]:
        """Prices and lookups all at once, under one deadline: a hanging call costs the tick one deadline, not
        one per call. A call still running at the deadline answers ProviderUnavailable."""
        calls: dict[tuple[str, str], Callable[[], object]] = {}
        for gpu_type in gpu_types:
            calls[("price", gpu_type)] = lambda t=gpu_type: self.price(t)
        for instance_id in instance_ids:
            calls[("lookup", instance_id)] = lambda i=instance_id: self.get_instance(i)
        answers = gather(calls, deadline_s)
        prices = {key: answers[("price", key)] for key in gpu_types}
        lookups = {key: answers[("lookup", key)] for key in instance_ids}
        return prices, lookups  # type: ignore[return-value]


def marker(name_prefix: str, deployment: str) -> str:
    """The marker's value: which scaler (name prefix) of which deployment started the worker."""
    return f"{name_prefix}/{deployment}"


def marker_deployment(value: str | None, name_prefix: str) -> str | None:
    """The deployment a marker value names if it is this name prefix's, else None."""
    if not value:
        return None
    prefix, _, deployment = value.partition("/")
    return deployment or None if prefix == name_prefix else None


def check_name(name: str) -> str:
    """Worker names go into GraphQL and command lines: lower-case letters, digits and '-' only."""
    if not _NAME.match(name):
        raise InvalidProviderInput(f"worker name {name!r} must match {_NAME.pattern}")
    return name


def worker_nodename(name: str) -> str:
    return f"{NODENAME_PREFIX}{name}@%h"


def name_from_nodename(nodename: str) -> str | None:
    """`gpu-audiobook-gpu-1a2b3c4d@host` -> `audiobook-gpu-1a2b3c4d`; None for other workers."""
    node = nodename.split("@", 1)[0]
    return node[len(NODENAME_PREFIX):] if node.startswith(NODENAME_PREFIX) else None


def worker_argv(name: str) -> list[str]:
    """The worker command (after the interpreter): one chapter at a time, gpu-long only."""
    return ["celery", "-A", "tasks", "worker", "-Q", QUEUE_GPU, "-c", "1", "-n", worker_nodename(name),
            "--without-mingle", "--without-gossip", "--loglevel", "INFO"]


def gather(calls: Mapping[T, Callable[[], object]], deadline_s: float) -> dict[T, object]:
    """Run blocking provider calls concurrently, each in a daemon thread, and wait at most `deadline_s` for
    all of them together. Each answer is the call's value or its ProviderError (ProviderUnavailable when it did
    not finish in time; the abandoned call finishes in its thread)."""
    answers: dict[T, object] = {}
    threads = []
    for key, call in calls.items():
        def run(key: T = key, call: Callable[[], object] = call) -> None:
            try:
                answers[key] = call()
            except ProviderError as exc:
                answers[key] = exc
            except Exception as exc:  # a bug in a provider must not hang or crash the tick
                answers[key] = ProviderError(f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, name="provider-read", daemon=True)
        thread.start()
        threads.append(thread)
    end = time.monotonic() + deadline_s
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    missing = ProviderUnavailable(f"no answer within {deadline_s:g}s")
    return {key: answers.get(key, missing) for key in calls}


def call_with_deadline(call: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run a blocking provider call for at most `timeout_s`; past it the outcome is unknown.

    The SDK's own HTTP timeout is 30 s with no retries; a tick must not hang that long per call. The
    abandoned call finishes in its daemon thread; what it did is seen by the next listing.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"provider-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ProviderUnavailable(f"{what}: no answer within {timeout_s:g}s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
