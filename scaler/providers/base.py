"""The one Provider interface: list, price, create, terminate. One file per implementation."""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from scaler.errors import InvalidProviderInput, ProviderUnavailable
from settings import QUEUE_GPU

#: Environment variable that marks a worker as the scaler's (with the name prefix as its value).
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
        """Every worker that carries this scaler's name prefix and marker."""

    @abstractmethod
    def create(self, name: str, gpu_type: str) -> Instance:
        """Start one worker named `name` consuming only `gpu-long` with concurrency 1."""

    @abstractmethod
    def terminate(self, instance_id: str) -> None:
        """Stop a worker for good. Called only on drained or never-registered workers."""


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
