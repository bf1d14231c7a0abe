"""RunPod pods through the unmodified `runpod` SDK (create_pod, get_pods, get_pod, terminate_pod, get_gpu).

The SDK pastes every value into GraphQL with f-strings and no escaping, so names, image, env and
docker args are checked here before anything is sent. `get_pods` echoes each pod's env (secrets
included): it is read for the marker and dropped, never logged. Prices are read fresh on every tick
(concurrently, under one deadline): a cached price could plan a pod under the cap that costs more.

Interruptible (spot) pods: the SDK has no call for RunPod's `podRentInterruptable` mutation, whose input is
the on-demand input plus `bidPerGpu`; the SDK's own on-demand mutation is renamed, given the bid, and sent
through the SDK's GraphQL helper. The bid is the price the caps count.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from scaler.errors import (
    CapacityError,
    InvalidProviderInput,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
)
from scaler.providers.base import (
    MARKER_ENV,
    Instance,
    Provider,
    call_with_deadline,
    check_name,
    marker,
    marker_deployment,
    worker_argv,
)
from settings import WORKER_PRICE_ENV

log = logging.getLogger(__name__)
T = TypeVar("T")

_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_GPU_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_POD_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CUDA_VERSION = re.compile(r"^\d{1,2}\.\d{1,2}$")
_DATA_CENTER = re.compile(r"^[A-Z]{2,4}-[A-Z]{2,4}-\d{1,3}$")
_MOUNT_PATH = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")
_ON_DEMAND_INPUT = re.compile(r"\bpodFindAndDeployOnDemand\(\s*input:\s*\{")
_UNSAFE_VALUE = re.compile(r'["\\\x00-\x1f\x7f]')
# Capacity messages seen from RunPod (runpod-python #314, #297, #168).
_CAPACITY = ("no longer any instances available", "not enough free gpus", "no instances available")
# A lookup of a pod that no longer exists.
_NOT_FOUND = ("not found", "does not exist")
# Environment passed from the scaler's environment to every pod.
PASS_THROUGH_PREFIXES = ("AUDIOBOOK_", "AWS_", "HF_")


def import_runpod() -> Any:
    """`import runpod` calls logging.basicConfig(level=INFO) as a side effect: keep the root logger as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import runpod

    root.handlers[:] = handlers
    root.setLevel(level)
    return runpod


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise InvalidProviderInput(f"env key {key!r} must match {_ENV_KEY.pattern}")
        if _UNSAFE_VALUE.search(value):
            # the value itself may be a secret: name the key only
            raise InvalidProviderInput(f"env value of {key} holds a quote, backslash or control character")
    return dict(env)


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value) or _UNSAFE_VALUE.search(value):
        raise InvalidProviderInput(f"{what} {value!r} must match {pattern.pattern}")
    return value


class RunPodProvider(Provider):
    """Persistent GPU pods, each running `celery -A tasks worker -Q gpu-long -c 1`."""

    name = "runpod"

    def __init__(self, *, api_key: str, gpu_types: list[str], image: str, name_prefix: str,
                 env: Mapping[str, str], deployment: str = "default", cloud_type: str = "SECURE",
                 container_disk_gb: int = 20, volume_gb: int = 0, network_volume_id: str | None = None,
                 volume_mount_path: str = "/runpod-volume", template_id: str | None = None,
                 allowed_cuda_versions: list[str] | None = None, data_centers: list[str] | None = None,
                 interruptible: bool = False, bid_usd_per_hour: float | None = None, timeout_s: float = 20.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not api_key:
            raise ProviderAuthError("RUNPOD_API_KEY is not set")
        self._runpod = import_runpod()
        self._runpod.api_key = api_key  # the SDK never reads RUNPOD_API_KEY itself
        self._gpu_types = [_check(_GPU_TYPE, t, "GPU type") for t in gpu_types]
        self.image = _check(_IMAGE, image, "image")
        self.name_prefix = check_name(name_prefix)
        if cloud_type not in ("ALL", "SECURE", "COMMUNITY"):
            raise InvalidProviderInput(f"cloud type {cloud_type!r} must be ALL, SECURE or COMMUNITY")
        self.cloud_type = cloud_type
        self.container_disk_gb = int(container_disk_gb)
        self.volume_gb = int(volume_gb)
        self.network_volume_id = (_check(_POD_ID, network_volume_id, "network volume id")
                                  if network_volume_id else None)
        self.volume_mount_path = _check(_MOUNT_PATH, volume_mount_path, "volume mount path")
        self.template_id = _check(_TEMPLATE_ID, template_id, "template id") if template_id else None
        self.allowed_cuda_versions = [_check(_CUDA_VERSION, v, "CUDA version") for v in allowed_cuda_versions or []]
        self.data_centers = [_check(_DATA_CENTER, d, "data center") for d in data_centers or []]
        if self.network_volume_id and len(self.data_centers) > 1:
            raise InvalidProviderInput("a network volume lives in one data center: give at most that one")
        if bid_usd_per_hour is not None and not bid_usd_per_hour > 0:
            raise InvalidProviderInput(f"bid {bid_usd_per_hour!r} USD/h must be above 0")
        self.interruptible = bool(interruptible)
        self.bid_usd_per_hour = bid_usd_per_hour
        self.deployment = check_name(deployment)
        self.env = check_env(dict(env) | {MARKER_ENV: marker(name_prefix, deployment)})
        self._secrets = sorted({v for v in self.env.values() if len(v) >= 6} | {api_key}, key=len, reverse=True)
        self.timeout_s = timeout_s
        self.clock = clock
        self._prices: dict[str, float] = {}  # the last price read per type, for the Instance a create returns

    # --- the interface ----------------------------------------------------------------------------------
    def gpu_types(self) -> list[str]:
        return list(self._gpu_types)

    def price(self, gpu_type: str) -> float:
        gpu = self._call(lambda: self._runpod.get_gpu(_check(_GPU_TYPE, gpu_type, "GPU type")), "get_gpu")
        if self.interruptible:
            price = self._spot_bid(gpu_type, gpu)
        else:
            price = _cloud_price(gpu, self.cloud_type, "securePrice", "communityPrice")
            if price is None:
                raise ProviderError(f"get_gpu: no {self.cloud_type} price for {gpu_type}")
        self._prices[gpu_type] = price
        return price

    def list_instances(self) -> list[Instance]:
        pods = self._call(self._runpod.get_pods, "get_pods") or []
        return [self._instance(pod) for pod in pods if (pod.get("name") or "").startswith(self.name_prefix + "-")]

    def get_instance(self, instance_id: str) -> Instance | None:
        pod_id = _check(_POD_ID, instance_id, "pod id")
        try:
            pod = self._call(lambda: self._runpod.get_pod(pod_id), "get_pod")
        except ProviderUnavailable as exc:
            if any(mark in str(exc).lower() for mark in _NOT_FOUND):
                return None
            raise
        if not pod or pod.get("desiredStatus") == "TERMINATED":
            return None
        return self._instance(pod)

    def create(self, name: str, gpu_type: str) -> Instance:
        check_name(name)
        _check(_GPU_TYPE, gpu_type, "GPU type")
        docker_args = " ".join(worker_argv(name))
        if _UNSAFE_VALUE.search(docker_args):
            raise InvalidProviderInput("docker args hold a quote, backslash or control character")
        # The pod's own price goes in its env, so its chapters bill at it: the price this tick's caps counted
        # (an interruptible pod's bid).
        price = self._prices[gpu_type] if gpu_type in self._prices else self.price(gpu_type)
        env = self.env | {WORKER_PRICE_ENV: repr(price)}
        pod = self._deploy_in_first_with_capacity(name, gpu_type, docker_args, env, price)
        if not pod or not pod.get("id"):
            raise ProviderUnavailable("create_pod: answer without a pod id")
        pod_id = _check(_POD_ID, str(pod["id"]), "pod id")
        return Instance(id=pod_id, name=name, usd_per_hour=self._prices.get(gpu_type, 0.0), status="starting",
                        gpu_type=gpu_type, created_at=self.clock(), deployment=self.deployment)

    def _deploy_in_first_with_capacity(self, name: str, gpu_type: str, docker_args: str, env: dict[str, str],
                                       price: float) -> dict[str, Any]:
        """Each data center in turn while the answer is "no capacity". Any other outcome ends the search, so an
        unknown one (a lost answer) never becomes a second pod in another data center."""
        what = "podRentInterruptable" if self.interruptible else "create_pod"
        centers: list[str | None] = list(self.data_centers) or [None]

        def deploy(center: str | None) -> dict[str, Any]:
            arguments = self._deploy_arguments(name, gpu_type, docker_args, env, center)
            if not self.interruptible:
                return self._runpod.create_pod(**arguments)
            return self._rent_interruptible(arguments, price)

        for center in centers[:-1]:
            try:
                return self._call(lambda c=center: deploy(c), what)
            except CapacityError:
                continue
        return self._call(lambda: deploy(centers[-1]), what)

    def _deploy_arguments(self, name: str, gpu_type: str, docker_args: str, env: dict[str, str],
                          center: str | None) -> dict[str, Any]:
        """create_pod's keyword arguments; the spot path sends the same input."""
        return dict(
            name=name, image_name=self.image, gpu_type_id=gpu_type, cloud_type=self.cloud_type, gpu_count=1,
            support_public_ip=False, start_ssh=False, volume_in_gb=self.volume_gb, min_vcpu_count=1,
            min_memory_in_gb=1, container_disk_in_gb=self.container_disk_gb, docker_args=docker_args, env=env,
            network_volume_id=self.network_volume_id, volume_mount_path=self.volume_mount_path,
            template_id=self.template_id, allowed_cuda_versions=self.allowed_cuda_versions or None,
            data_center_id=center)

    def _rent_interruptible(self, arguments: dict[str, Any], bid: float) -> dict[str, Any]:
        """`podRentInterruptable` with the on-demand input plus `bidPerGpu`, as create_pod would build it."""
        from runpod.api.graphql import run_graphql_query
        from runpod.api.mutations.pods import generate_pod_deployment_mutation

        if arguments["network_volume_id"] and arguments["data_center_id"] is None:
            # create_pod's own rule: a network volume decides the data center.
            volumes = self._runpod.get_user().get("networkVolumes") or []
            arguments["data_center_id"] = next((v["dataCenterId"] for v in volumes
                                                if v.get("id") == arguments["network_volume_id"]), None)
        on_demand = generate_pod_deployment_mutation(**arguments)
        mutation, count = _ON_DEMAND_INPUT.subn(f"podRentInterruptable( input: {{ bidPerGpu: {bid:.4f},",
                                                on_demand, count=1)
        if count != 1:
            raise ProviderError("the SDK's pod mutation has an unexpected shape; cannot add a bid")
        return run_graphql_query(mutation)["data"]["podRentInterruptable"]

    def terminate(self, instance_id: str) -> None:
        pod_id = _check(_POD_ID, instance_id, "pod id")
        self._call(lambda: self._runpod.terminate_pod(pod_id), "terminate_pod")

    # --- helpers --------------------------------------------------------------------------------------
    def _spot_bid(self, gpu_type: str, gpu: dict[str, Any]) -> float:
        """The bid for one GPU of `gpu_type`: the configured one, else the current spot price of the cloud type.

        A bid under RunPod's minimum bid can rent nothing: a capacity error, so the next type is tried.
        """
        minimum = float((gpu.get("lowestPrice") or {}).get("minimumBidPrice") or 0.0)
        market = _cloud_price(gpu, self.cloud_type, "secureSpotPrice", "communitySpotPrice") or minimum
        bid = self.bid_usd_per_hour or market
        if not bid:
            raise ProviderError(f"get_gpu: no {self.cloud_type} spot price for {gpu_type}")
        if bid < minimum:
            raise CapacityError(f"bid {bid:.4f} USD/h is under the minimum bid {minimum:.4f} for {gpu_type}")
        return round(bid, 4)

    def _instance(self, pod: dict[str, Any]) -> Instance:
        desired = pod.get("desiredStatus")
        if desired in ("EXITED", "TERMINATED"):
            status = "exited"
        elif pod.get("runtime"):
            status = "running"
        else:
            status = "starting"
        uptime = pod.get("uptimeSeconds")
        created = self.clock() - float(uptime) if status == "running" and uptime else None
        machine = pod.get("machine") or {}
        env = dict(item.partition("=")[::2] for item in pod.get("env") or [] if isinstance(item, str))
        return Instance(id=_check(_POD_ID, str(pod["id"]), "pod id"), name=pod.get("name") or "",
                        usd_per_hour=float(pod.get("costPerHr") or 0.0), status=status,  # type: ignore[arg-type]
                        gpu_type=machine.get("gpuDisplayName") or "", created_at=created,
                        deployment=marker_deployment(env.get(MARKER_ENV), self.name_prefix))

    def _scrub(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message[:500]

    def _call(self, call: Callable[[], T], what: str) -> T:
        """One SDK call under the deadline, its errors mapped onto scaler.errors (secrets scrubbed)."""
        error = self._runpod.error
        try:
            return call_with_deadline(call, self.timeout_s, what)
        except ProviderError:
            raise
        except error.AuthenticationError as exc:
            raise ProviderAuthError(f"{what}: {self._scrub(str(exc))}") from None
        except error.QueryError as exc:  # exc.query holds the env: never shown
            message = self._scrub(str(exc))
            if any(mark in message.lower() for mark in _CAPACITY):
                raise CapacityError(f"{what}: {message}") from None
            raise ProviderUnavailable(f"{what}: {message}") from None
        except ValueError as exc:  # a non-JSON answer (a 5xx page) or get_gpu's "No GPU found"
            raise ProviderUnavailable(f"{what}: {type(exc).__name__}: {self._scrub(str(exc))}") from None
        except OSError as exc:  # requests' ConnectionError and Timeout
            raise ProviderUnavailable(f"{what}: {type(exc).__name__}: {self._scrub(str(exc))}") from None


def _cloud_price(gpu: Mapping[str, Any], cloud_type: str, secure: str, community: str) -> float | None:
    """The price of one GPU on `cloud_type`; ALL may land on either cloud, so plan with the dearer."""
    fields = {"SECURE": [secure], "COMMUNITY": [community], "ALL": [secure, community]}[cloud_type]
    known = [float(gpu[f]) for f in fields if gpu.get(f)]
    return max(known) if known else None


def pod_env_from_settings(settings: Any, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment each pod gets: the broker as pods reach it, and AUDIOBOOK_/AWS_/HF_ variables."""
    broker = (settings.runpod_worker_broker_url or settings.broker_url).get_secret_value()
    backend = settings.result_backend.get_secret_value() if settings.result_backend else broker
    env = {k: v for k, v in environ.items() if k.startswith(PASS_THROUGH_PREFIXES)}
    return env | {"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": backend}
