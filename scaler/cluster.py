"""The live Cluster: the broker's depth, Celery inspect and cancel_consumer, and the workers' model reports."""

from __future__ import annotations

import redis
from celery import Celery

from scaler import health
from scaler.drain import start_drain
from scaler.errors import ObservationError
from scaler.health import WorkerHealth
from scaler.observe import DepthReader, QueueDepth
from scaler.workers import CeleryWorker, inspect_workers


class CeleryCluster:
    """One Celery app and broker, seen from the GPU queue."""

    def __init__(self, app: Celery, queue: str, depth_reader: DepthReader, health_client: redis.Redis,
                 health_key: str, inspect_timeout_s: float = 1.0) -> None:
        self.app = app
        self.queue = queue
        self.depth_reader = depth_reader
        self.health_client = health_client
        self.health_key = health_key
        self.inspect_timeout_s = inspect_timeout_s

    def depth(self, with_chars: bool) -> QueueDepth:
        return self.depth_reader.read(with_chars=with_chars)

    def workers(self) -> dict[str, CeleryWorker]:
        return inspect_workers(self.app, self.queue, self.inspect_timeout_s)

    def health(self) -> dict[str, WorkerHealth]:
        try:
            return health.read(self.health_client, self.health_key)
        except redis.RedisError as exc:
            raise ObservationError(f"worker health reports: {exc}") from None

    def drain(self, nodename: str) -> bool:
        return start_drain(self.app, nodename, self.queue, self.inspect_timeout_s)

    def forget_health(self, nodenames: list[str]) -> None:
        health.forget(self.health_client, self.health_key, nodenames)
