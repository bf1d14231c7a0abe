"""`audiobook.reap`: one reaper pass (scaler.reaper), sent by beat every SCALER_INTERVAL_SECONDS to `control`.

With a Redis broker it puts the chapters of dead workers back at the head of `gpu-long` (and the other queues'
messages too) as soon as their leases lapse. RabbitMQ requeues them itself: the task does nothing there.
"""

from __future__ import annotations

import functools
from typing import Any

from scaler.reaper import Reaper
from scaler.redis_client import is_redis_url, redis_client
from settings import QUEUES, get_settings
from tasks import app


@functools.cache
def get_reaper() -> Reaper:
    """One Reaper per process, keeping its Redis connection between passes."""
    options = dict(app.conf.broker_transport_options or {})
    client = redis_client(str(app.conf.broker_url), options, socket_timeout=10, socket_connect_timeout=5)
    return Reaper(client, app.connection_for_write, QUEUES, options, lease_s=get_settings().lease_s)


@app.task(name="audiobook.reap", ignore_result=True, soft_time_limit=120, time_limit=150)
def reap() -> dict[str, Any]:
    if not is_redis_url(str(app.conf.broker_url)):
        return {"skipped": "the broker requeues a dead consumer's messages itself"}
    return get_reaper().run().to_json()
