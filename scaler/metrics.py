"""Prometheus metrics of the scaler (prometheus-client), in their own registry.

Served by `serve(port)` when SCALER_METRICS_PORT is set (from the control worker that runs the tick).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from scaler.policy import CAPS

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
WAITING = Gauge("audiobook_scaler_waiting", "Messages waiting on the GPU queue (last good read).",
                registry=REGISTRY)
IN_FLIGHT = Gauge("audiobook_scaler_in_flight", "GPU-queue messages reserved or running.", registry=REGISTRY)
WORKERS = Gauge("audiobook_scaler_workers", "Pool workers by state.", ["state"], registry=REGISTRY)
TARGET = Gauge("audiobook_scaler_target", "Pool size the last decision aimed at.", registry=REGISTRY)
USD_PER_HOUR = Gauge("audiobook_scaler_usd_per_hour", "Summed price of the pool now.", registry=REGISTRY)
SPENT_TODAY = Gauge("audiobook_scaler_spent_today_usd", "Spend of the current UTC day.", registry=REGISTRY)
CAP_HITS = Counter("audiobook_scaler_cap_hits", "Decisions cut by a cap.", ["cap"], registry=REGISTRY)
PROVIDER_ERRORS = Counter("audiobook_scaler_provider_errors", "Failed provider calls.", ["operation"],
                          registry=REGISTRY)
READ_FAILURES = Counter("audiobook_scaler_read_failures", "Failed reads of the broker or Celery.", ["source"],
                        registry=REGISTRY)
TICKS = Counter("audiobook_scaler_ticks", "Ticks by outcome.", ["outcome"], registry=REGISTRY)
ACTIONS = Counter("audiobook_scaler_actions", "Actions done.", ["action"], registry=REGISTRY)

for _cap in CAPS:
    CAP_HITS.labels(_cap)
for _state in ("booting", "idle", "busy", "draining", "silent"):
    WORKERS.labels(_state)

_served: set[int] = set()
_serve_lock = threading.Lock()


def observe_record(record: dict[str, Any]) -> None:
    """Update every metric from one decision record (see scaler.tick)."""
    TICKS.labels(record.get("outcome", "ok")).inc()
    observation = record.get("observation") or {}
    decision = record.get("decision") or {}
    if observation.get("waiting") is not None:
        WAITING.set(observation["waiting"])
    if observation.get("in_flight") is not None:
        IN_FLIGHT.set(observation["in_flight"])
    counts = observation.get("states") or {}
    if observation.get("workers_known", True):
        for state in ("booting", "idle", "busy", "draining", "silent"):
            WORKERS.labels(state).set(counts.get(state, 0))
    if "target" in decision:
        TARGET.set(decision["target"])
        USD_PER_HOUR.set(decision["usd_per_hour"])
        SPENT_TODAY.set(decision["spent_today_usd"])
    for cap in decision.get("caps_hit") or []:
        CAP_HITS.labels(cap).inc()
    for source in observation.get("failed_sources") or []:
        READ_FAILURES.labels(source).inc()
    executed = record.get("executed") or {}
    for operation in executed.get("provider_errors") or []:
        PROVIDER_ERRORS.labels(operation).inc()
    for action in ("created", "drained", "terminated"):
        if executed.get(action):
            ACTIONS.labels(action).inc(len(executed[action]))


def serve(port: int | None) -> bool:
    """Start the /metrics server once per process; False if the port is taken (another pool process)."""
    if port is None:
        return False
    with _serve_lock:
        if port in _served:
            return True
        try:
            start_http_server(port, registry=REGISTRY)
        except OSError as exc:
            log.warning("metrics port %d not served here: %s", port, exc)
            return False
        _served.add(port)
        return True
