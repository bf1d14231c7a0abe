"""A consumer bootstep that keeps a lease (scaler.leases) on every message this worker holds, Redis broker only.

It runs as a thread of the worker's main process: the main process is what holds the messages (a pool child
may die and be replaced; the main process then requeues the chapter itself). A thread, not the consumer's
timer, so the lease is renewed whatever pool runs tasks. A message is leased as soon as it is received, so
the reaper's grace only has to cover that moment. When the main process dies, renewals stop and the leases
lapse within AUDIOBOOK_LEASE_S.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import bootsteps
from celery.signals import task_received
from celery.worker import state

from scaler.leases import Leases, key_prefix
from scaler.redis_client import is_redis_url, redis_client
from settings import get_settings

log = logging.getLogger(__name__)


def held_tags() -> list[str]:
    """Delivery tags of every message this process holds: reserved, running, or waiting for an ETA."""
    for _ in range(5):
        try:  # the consumer thread may change these sets while they are copied
            requests = (*state.reserved_requests, *state.scheduled_requests)
            break
        except RuntimeError:
            continue
    else:
        return []
    tags = {getattr(r.message, "delivery_tag", None) for r in requests}
    return sorted(str(t) for t in tags if t is not None)


class LeaseRenewer(threading.Thread):
    """Renews the leases of `held_tags()` every `every_s`, and at once when woken (a message arrived)."""

    def __init__(self, leases: Leases, holder: str, every_s: float) -> None:
        super().__init__(name="lease-renewer", daemon=True)
        self.leases = leases
        self.holder = holder
        self.every_s = every_s
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.failing = False

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.leases.renew(held_tags(), self.holder)
                if self.failing:
                    log.info("lease renewals work again")
                self.failing = False
            except Exception as exc:  # noqa: BLE001 - Redis down: try again next round, say so once
                if not self.failing:
                    log.warning("cannot renew message leases: %s", exc)
                self.failing = True
            self.wake.wait(self.every_s)
            self.wake.clear()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()


class LeaseKeeper(bootsteps.StartStopStep):
    """Starts one LeaseRenewer per worker process; it outlives consumer restarts (broker reconnections)."""

    label = "LeaseKeeper"

    def __init__(self, parent: Any, **kwargs: Any) -> None:  # noqa: ANN401 - Celery's Consumer
        super().__init__(parent, **kwargs)
        self.renewer: LeaseRenewer | None = None

    def start(self, parent: Any) -> None:  # noqa: ANN401
        if self.renewer is not None:
            return
        url = str(parent.app.conf.broker_url)
        if not is_redis_url(url):
            return  # RabbitMQ requeues a dead consumer's messages itself
        options = dict(parent.app.conf.broker_transport_options or {})
        lease_s = get_settings().lease_s
        client = redis_client(url, options, socket_timeout=5, socket_connect_timeout=5)
        self.renewer = LeaseRenewer(Leases(client, key_prefix(options), lease_s), parent.hostname, lease_s / 3)
        task_received.connect(self._on_received, weak=False)
        self.renewer.start()

    def _on_received(self, **_: Any) -> None:  # noqa: ANN401
        if self.renewer is not None:
            self.renewer.wake.set()

    def shutdown(self, parent: Any) -> None:  # noqa: ANN401
        if self.renewer is not None:
            task_received.disconnect(self._on_received)
            self.renewer.stop()
            self.renewer = None
