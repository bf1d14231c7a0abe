"""Draining one worker before it is terminated.

1. `cancel_consumer(gpu-long)` to that worker only: it takes no new chapter (for its process lifetime).
2. Wait until inspect shows the consumer gone and nothing active or reserved: the tick checks this on
   each later tick (scaler.workers), so a chapter of an hour never blocks a tick.
3. Terminate through the provider.
"""

from __future__ import annotations

import time

from celery import Celery

from scaler.errors import ObservationError
from scaler.workers import CeleryWorker, inspect_workers


def start_drain(app: Celery, nodename: str, queue: str, timeout: float = 1.0) -> bool:
    """Ask `nodename` to stop consuming `queue`. True if it acknowledged (the cancel may land a moment later)."""
    replies = app.control.cancel_consumer(queue, destination=[nodename], reply=True, timeout=timeout) or []
    return any(nodename in reply for reply in replies)


def is_drained(worker: CeleryWorker) -> bool:
    """No longer consuming, nothing running, nothing reserved: safe to terminate."""
    return not worker.consuming and not worker.busy


def wait_drained(app: Celery, nodename: str, queue: str, deadline_s: float, poll_s: float = 1.0,
                 timeout: float = 1.0) -> bool:
    """Poll inspect until `nodename` is drained or `deadline_s` passes (for one-off use, e.g. the CLI)."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            worker = inspect_workers(app, queue, timeout).get(nodename)
        except ObservationError:
            worker = None
        if worker is not None and is_drained(worker):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(poll_s)
