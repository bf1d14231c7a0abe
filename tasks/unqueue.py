"""Take messages of given task ids off a queue (cancel): the broker's depth, and so the scaler's, shrinks at once.

Revoking alone would leave them queued until some worker takes and drops them, and with no worker that is
never. Redis: LREM of the exact entries from kombu's lists (priority keys included). RabbitMQ has no remove
by content: take every ready message, acknowledge the cancelled ones, and close the channel, which puts the
rest back in their places.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from celery import Celery

from scaler.observe import queue_keys
from scaler.redis_client import is_redis_url, redis_client


def remove_queued(app: Celery, queue: str, task_ids: Collection[str]) -> int:
    """Remove the waiting messages of `task_ids` from `queue`; returns how many were removed."""
    ids = set(task_ids)
    if not ids:
        return 0
    url = str(app.conf.broker_url)
    options = dict(app.conf.broker_transport_options or {})
    if is_redis_url(url):
        return _remove_redis(url, options, queue, ids)
    return _remove_amqp(app, queue, ids)


def _task_id(raw: bytes) -> str | None:
    try:
        return json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None


def _remove_redis(url: str, options: dict, queue: str, ids: set[str]) -> int:
    client = redis_client(url, options, socket_timeout=10, socket_connect_timeout=5)
    removed = 0
    try:
        for key in queue_keys(queue, options):
            for raw in client.lrange(key, 0, -1):
                if _task_id(raw) in ids:
                    removed += int(client.lrem(key, 1, raw))
    finally:
        client.close()
    return removed


def _remove_amqp(app: Celery, queue: str, ids: set[str]) -> int:
    removed = 0
    with app.connection_for_write() as conn:
        channel = conn.channel()
        try:
            bound = app.amqp.queues[queue].bind(channel)
            while (message := bound.get(no_ack=False, accept=["json"])) is not None:
                if (message.headers or {}).get("id") in ids:
                    message.ack()
                    removed += 1
        finally:
            channel.close()  # the broker requeues every message still held, in its place
    return removed
