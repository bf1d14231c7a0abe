"""Simulated pods behind the real Provider interface (the Celery view of them is `scaler.sim.cluster`).

The execution core drives them exactly as it drives RunPod and Celery. The cloud keeps the truth the core
cannot see: every pod that bills, when each became visible, which deployment it belongs to; and it measures
what must never happen, at every instant: more pods or more USD/h than the caps, a busy pod terminated, a pod
of another deployment touched. Its lies come from a FaultModel.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from scaler import caps
from scaler.errors import CapacityError, ProviderError, ProviderUnavailable
from scaler.policy import GpuOffer
from scaler.providers.base import Instance, Lookup, Provider, marker_deployment
from scaler.sim.faults import FaultModel

#: The simulated day starts at 2024-01-01T00:00:00Z, so the policy's UTC-day budget rolls over at midnight.
EPOCH = 1_704_067_200.0
DEPLOYMENT = "sim"
FOREIGN_DEPLOYMENT = "other"
BROKEN_IMAGE = "model cannot be loaded: OSError: can't load the model (no such file or directory)"


class SimClock:
    """Simulated seconds since the start of the run; calling it gives epoch seconds, as time.time does."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return EPOCH + self.t


@dataclass(eq=False)  # compared by identity: two pods are never the same pod
class Pod:
    id: str
    name: str
    gpu_type: str
    usd_per_hour: float
    created_at: float  # simulated seconds
    ready_at: float | None  # its worker registers then; None: stuck, never registers
    deployment: str = DEPLOYMENT
    broken: str | None = None  # its model cannot load: it registers, says so and takes no chapter
    visible_at: float = 0.0  # listed and found by id only from then (a late create)
    ends_at: float | None = None  # a foreign pod: when its owner terminates it
    draining: bool = False
    chapter: int | None = None  # index into the trace's chapters
    started_at: float = 0.0
    terminated_at: float | None = None

    def registered(self, t: float) -> bool:
        return self.ready_at is not None and t >= self.ready_at

    @property
    def nodename(self) -> str:
        return f"gpu-{self.name}@sim"


@dataclass
class CloudStats:
    """What the cloud measured. The first five must stay 0."""

    over_max_workers: int = 0  # instants with more of our pods than the worker cap
    over_max_usd: int = 0  # instants with our pods costing more than the USD/h cap
    busy_terminated: int = 0  # pods terminated while synthesizing a chapter
    foreign_touched: int = 0  # drains or terminates of another deployment's pods
    max_pods: int = 0
    max_usd_per_hour: float = 0.0
    capacity_errors: int = 0
    faults: Counter[str] = field(default_factory=Counter)


class SimCloud(Provider):
    """The provider's side: pods that boot, bill and can be terminated, and the answers (true or not) about them."""

    name = "sim"

    def __init__(self, clock: SimClock, offers: tuple[GpuOffer, ...], *, max_workers: int, max_usd_per_hour: float,
                 name_prefix: str = "audiobook-gpu", boot_s: float = 180.0, boot_jitter: float = 0.25,
                 stuck_boot_rate: float = 0.0, capacity_error_rate: float = 0.0, faults: FaultModel | None = None,
                 seed: int = 1) -> None:
        self.clock = clock
        self.offers = offers
        self.prices = {o.gpu_type: o.usd_per_hour for o in offers}
        self.max_workers, self.max_usd_per_hour = max_workers, max_usd_per_hour
        self.name_prefix = name_prefix
        self.boot_s, self.boot_jitter, self.stuck_boot_rate = boot_s, boot_jitter, stuck_boot_rate
        self.capacity_error_rate = capacity_error_rate
        self.faults = faults or FaultModel()
        # One stream per kind of chance, so the n-th pod boots alike under every policy (common random numbers).
        self.boot_rng = random.Random(f"boot:{seed}")
        self.capacity_rng = random.Random(f"capacity:{seed}")
        self.fault_rng = random.Random(f"faults:{seed}")
        self.pods: dict[str, Pod] = {}  # every live pod on the account, ours and foreign
        self.ours: list[Pod] = []  # every pod of ours ever made (billing)
        self.broken_until = -1.0  # the image is broken until then
        self.hidden: set[str] = set()  # pod ids every listing leaves out (a scripted lie; lookups still find them)
        self.sold_out: set[str] = set()  # GPU types with no capacity at all (scripted)
        self.stats = CloudStats()
        self.on_spawn: Callable[[Pod], None] | None = None
        self.on_terminate: Callable[[Pod], None] | None = None
        self._made = 0

    # --- the Provider interface -------------------------------------------------------------------------
    def gpu_types(self) -> list[str]:
        return [o.gpu_type for o in self.offers]

    def price(self, gpu_type: str) -> float:
        if self._fault("price_hang"):
            raise ProviderUnavailable("get_gpu: no answer within the deadline")
        return self.prices[gpu_type]

    def list_instances(self) -> list[Instance]:
        if self._fault("list_error"):
            raise ProviderUnavailable("get_pods: HTTP 500")
        t = self.clock.t
        pods = [p for p in self.pods.values() if p.visible_at <= t and p.id not in self.hidden]
        if pods and self._fault("omit_all"):
            return []
        if pods and self._fault("omit_some"):
            pods = [p for p in pods if self.fault_rng.random() < 0.5]
        return [self._instance(p, null_runtime=self._fault("null_runtime")) for p in pods]

    def get_instance(self, instance_id: str) -> Instance | None:
        if self._fault("lookup_hang"):
            raise ProviderUnavailable("get_pod: no answer within the deadline")
        pod = self.pods.get(instance_id)
        return self._instance(pod) if pod is not None and pod.visible_at <= self.clock.t else None

    def create(self, name: str, gpu_type: str) -> Instance:
        if self.capacity_rng.random() < self.capacity_error_rate or gpu_type in self.sold_out:
            self.stats.capacity_errors += 1
            raise CapacityError("create_pod: There are no longer any instances available with the requested "
                                "specifications. Please refresh and try again.")
        f, roll = self.faults, self.fault_rng.random()
        if roll < f.failed_create:
            self.stats.faults["failed_create"] += 1
            raise ProviderUnavailable("create_pod: no answer within the deadline")
        pod = self._spawn(name, gpu_type, DEPLOYMENT)
        if roll < f.failed_create + f.lost_create:
            self.stats.faults["lost_create"] += 1
            raise ProviderUnavailable("create_pod: HTTP 500 (upstream timed out)")
        if roll < f.failed_create + f.lost_create + f.late_create:
            self.stats.faults["late_create"] += 1
            pod.visible_at = self.clock.t + self.fault_rng.uniform(0.0, f.late_s)
            raise ProviderUnavailable("create_pod: no answer within the deadline")
        return self._instance(pod)

    def terminate(self, instance_id: str) -> None:
        pod = self.pods.get(instance_id)
        if pod is None or pod.visible_at > self.clock.t:
            raise ProviderError("terminate_pod: Pod not found")
        if pod.deployment != DEPLOYMENT:
            self.stats.foreign_touched += 1
        if pod.chapter is not None:
            self.stats.busy_terminated += 1
        self.kill(pod)

    def read_many(self, gpu_types: list[str], instance_ids: list[str],
                  deadline_s: float) -> tuple[dict[str, float | ProviderError], dict[str, Lookup]]:
        """Sequential: simulated calls take no time (a hang is an answer that never came)."""
        return ({t: _answer(lambda t=t: self.price(t)) for t in gpu_types},
                {i: _answer(lambda i=i: self.get_instance(i)) for i in instance_ids})  # type: ignore[misc]

    # --- the world ----------------------------------------------------------------------------------------
    def between_ticks(self) -> None:
        """World faults: a foreign pod comes or goes, a price moves, the image breaks."""
        f, t = self.faults, self.clock.t
        for pod in [p for p in self.pods.values() if p.ends_at is not None and t >= p.ends_at]:
            self.pods.pop(pod.id, None)  # its owner terminated it
        if self._fault("foreign_pod"):
            self._made += 1
            gpu_type = self.offers[0].gpu_type
            pod = Pod(f"fx{self._made:06d}", f"{self.name_prefix}-f{self._made:05d}", gpu_type, self.prices[gpu_type],
                      t, t + 60.0, deployment=FOREIGN_DEPLOYMENT,
                      ends_at=t + self.fault_rng.uniform(600.0, f.foreign_s))
            self.pods[pod.id] = pod
        if self._fault("price_change"):
            offer = self.fault_rng.choice(self.offers)
            moved = offer.usd_per_hour * self.fault_rng.uniform(0.7, 1.4)
            self.prices[offer.gpu_type] = round(min(max(moved, offer.usd_per_hour / 2), offer.usd_per_hour * 2), 4)
        if t >= self.broken_until and self._fault("crash_loop"):
            self.broken_until = t + f.crash_loop_s

    def kill(self, pod: Pod) -> None:
        pod.terminated_at = self.clock.t
        self.pods.pop(pod.id, None)
        if self.on_terminate is not None:
            self.on_terminate(pod)

    def live_ours(self) -> list[Pod]:
        return [p for p in self.pods.values() if p.deployment == DEPLOYMENT]

    # --- helpers ----------------------------------------------------------------------------------------
    def _spawn(self, name: str, gpu_type: str, deployment: str) -> Pod:
        t = self.clock.t
        self._made += 1
        stuck = self.boot_rng.random() < self.stuck_boot_rate
        boot = self.boot_s * self.boot_rng.lognormvariate(0.0, self.boot_jitter)
        pod = Pod(f"p{self._made:06d}", name, gpu_type, self.prices[gpu_type], t, None if stuck else t + boot,
                  deployment=deployment, broken=BROKEN_IMAGE if t < self.broken_until else None, visible_at=t)
        self.pods[pod.id] = pod
        self.ours.append(pod)
        self._measure()
        if self.on_spawn is not None:
            self.on_spawn(pod)
        return pod

    def _measure(self) -> None:
        """The caps at this instant, over the pods that really bill us (whatever the scaler knows of them)."""
        live = self.live_ours()
        usd = sum(p.usd_per_hour for p in live)
        self.stats.max_pods = max(self.stats.max_pods, len(live))
        self.stats.max_usd_per_hour = max(self.stats.max_usd_per_hour, usd)
        self.stats.over_max_workers += len(live) > self.max_workers
        self.stats.over_max_usd += caps.over_usd_cap(usd, self.max_usd_per_hour)

    def _instance(self, pod: Pod, null_runtime: bool = False) -> Instance:
        t = self.clock.t
        running = pod.ready_at is not None and t >= pod.ready_at and not null_runtime
        return Instance(id=pod.id, name=pod.name, usd_per_hour=pod.usd_per_hour,
                        status="running" if running else "starting", gpu_type=pod.gpu_type,
                        created_at=EPOCH + pod.created_at,
                        deployment=marker_deployment(f"{self.name_prefix}/{pod.deployment}", self.name_prefix))

    def _fault(self, kind: str) -> bool:
        rate = getattr(self.faults, kind)
        if rate > 0 and self.fault_rng.random() < rate:
            self.stats.faults[kind] += 1
            return True
        return False


def _answer(call: Callable[[], object]) -> object:
    try:
        return call()
    except ProviderError as exc:
        return exc
