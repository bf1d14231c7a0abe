"""Prometheus metrics of the scaler, read from its shared state in Redis at every scrape.

A tick may run in any process (either pool child of the control worker, `audiobook scaler tick`), so no
process's memory holds the truth: the collector exports the latest decision record and the cumulative
counters the ticks keep in Redis. Served by `serve(port, store)` when SCALER_METRICS_PORT is set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scaler.policy import CAPS
from scaler.records import TickRecord
from scaler.state import StateStore

log = logging.getLogger(__name__)

STATES = ("booting", "idle", "busy", "draining", "silent")
#: Counters kept in Redis (`<name>:<label>`), with their Prometheus name, help and label.
COUNTERS = {
    "ticks": ("audiobook_scaler_ticks", "Ticks by outcome.", "outcome"),
    "cap_hits": ("audiobook_scaler_cap_hits", "Decisions cut by a cap.", "cap"),
    "provider_errors": ("audiobook_scaler_provider_errors", "Failed provider calls.", "operation"),
    "read_failures": ("audiobook_scaler_read_failures", "Failed reads of the broker, Celery or the provider.",
                      "source"),
    "actions": ("audiobook_scaler_actions", "Actions done.", "action"),
}
HEADROOM_CAPS = ("max_workers", "max_usd_per_hour", "daily_budget")


class StateCollector(Collector):
    """Every scaler metric, from what `read` returns: (the latest record or None, the counters)."""

    def __init__(self, read: Callable[[], tuple[TickRecord | None, dict[str, int]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("audiobook_scaler_state_up", "1 when the scaler's Redis state could be read.")
        try:
            record, counters = self.read()
        except redis.RedisError as exc:
            log.warning("scaler metrics: state unreadable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _counters(counters)
        if record is not None:
            yield from _gauges(record)


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


def _gauges(record: TickRecord) -> Iterator[Metric]:
    yield from _gauge("audiobook_scaler_last_tick_timestamp_seconds", "When the latest recorded tick ran.", record.ts)
    obs, decision, health, headroom = record.observation, record.decision, record.health, record.headroom
    if obs is not None:
        yield from _gauge("audiobook_scaler_waiting", "Chapters waiting on the GPU queue.", obs.waiting)
        yield from _gauge("audiobook_scaler_in_flight", "GPU-queue chapters reserved or running.", obs.in_flight)
        yield from _gauge("audiobook_scaler_oldest_waiting_seconds", "Age of the oldest waiting chapter (0 when none "
                          "waits).", obs.oldest_waiting_s if obs.oldest_waiting_s is not None
                          else 0.0 if obs.waiting == 0 else None)
        if obs.workers_known:
            workers = GaugeMetricFamily("audiobook_scaler_workers", "Pool workers by state.", labels=["state"])
            for state in STATES:
                workers.add_metric([state], obs.states.get(state, 0))
            yield workers
        yield from _gauge("audiobook_scaler_foreign_pods", "Pods with the name prefix of another deployment (left "
                          "alone).", len(record.reconcile.foreign) if record.reconcile else None)
    if decision is not None:
        yield from _gauge("audiobook_scaler_target", "Pool size the latest decision aimed at.", decision.target)
        yield from _gauge("audiobook_scaler_usd_per_hour", "Summed price of the pool now.", decision.usd_per_hour)
        yield from _gauge("audiobook_scaler_spent_today_usd", "Spend of the current UTC day.", decision.spent_today_usd)
        yield from _gauge("audiobook_scaler_held", "1 when the latest tick held (a read failed).", int(decision.held))
        bound = GaugeMetricFamily("audiobook_scaler_bound", "1 for the cap that bound the latest decision.",
                                  labels=["cap"])
        for cap in CAPS:
            bound.add_metric([cap], int(decision.bound_by == cap))
        yield bound
    if headroom is not None:
        room = GaugeMetricFamily("audiobook_scaler_headroom", "How far the pool is under each cap (workers, USD/h, "
                                 "USD today).", labels=["cap"])
        room.add_metric(["max_workers"], headroom.max_workers)
        room.add_metric(["max_usd_per_hour"], headroom.max_usd_per_hour)
        if headroom.daily_budget_usd is not None:
            room.add_metric(["daily_budget"], headroom.daily_budget_usd)
        yield room
    if health is not None:
        yield from _gauge("audiobook_scaler_crash_loop", "1 while the crash-loop breaker stops creating.",
                          int(health.crash_loop))
        yield from _gauge("audiobook_scaler_failed_starts_in_a_row", "Workers in a row that failed to become ready.",
                          health.failed_in_a_row)
        yield from _gauge("audiobook_scaler_healthy_workers", "Workers up and able to load the model.",
                          health.healthy)


def _counters(counters: dict[str, int]) -> Iterator[Metric]:
    labels: dict[str, dict[str, int]] = {kind: {} for kind in COUNTERS}
    for key, value in counters.items():
        kind, _, label = key.partition(":")
        if kind in labels:
            labels[kind][label] = value
    for cap in CAPS:
        labels["cap_hits"].setdefault(cap, 0)
    for kind, (name, doc, label) in COUNTERS.items():
        family = CounterMetricFamily(name, doc, labels=[label])
        for value_label, value in sorted(labels[kind].items()):
            family.add_metric([value_label], value)
        yield family


def registry_for(store: StateStore) -> CollectorRegistry:
    """A registry holding only the scaler's collector over `store`."""
    registry = CollectorRegistry()

    def read() -> tuple[TickRecord | None, dict[str, int]]:
        return next(iter(store.records(1)), None), store.counters()

    registry.register(StateCollector(read))
    return registry


_served: set[int] = set()
_serve_lock = threading.Lock()


def serve(port: int | None, store: StateStore) -> bool:
    """Start the /metrics server once per process; False if the port is taken (another pool process serves
    the same shared state there)."""
    if port is None:
        return False
    with _serve_lock:
        if port in _served:
            return True
        try:
            start_http_server(port, registry=registry_for(store))
        except OSError as exc:
            log.info("metrics port %d not served here: %s", port, exc)
            return False
        _served.add(port)
        return True
