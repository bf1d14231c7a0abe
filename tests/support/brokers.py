"""Both brokers for tests: the machine's RabbitMQ with a private vhost per test session (rabbitmqctl), our
queues emptied per test; `BOTH_BROKERS` runs a test once on Redis and once on RabbitMQ."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from kombu import Connection

from settings import QUEUES

#: Parametrize a test over both brokers (the `broker` fixture of tests/conftest.py).
BOTH_BROKERS = pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)

AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("TEST_AMQP_PORT", "5672"))


def rabbitmqctl(*args: str) -> None:
    try:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:  # a missing service fails the run, never skips
        detail = getattr(exc, "stderr", "") or str(exc)
        raise RuntimeError(f"the tests need RabbitMQ at {AMQP_HOST}:{AMQP_PORT} and rabbitmqctl: {detail}") from exc


@dataclass(frozen=True)
class Vhost:
    name: str

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{quote(self.name, safe='')}"

    @classmethod
    def create(cls, name: str) -> Vhost:
        rabbitmqctl("add_vhost", name)
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return cls(name)

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)


def delete_queues(url: str) -> None:
    """Delete our queues (and what they hold) so a test starts from empty ones; workers declare them again."""
    with Connection(url, connect_timeout=5) as conn:
        for queue in QUEUES:
            channel = conn.channel()
            try:
                channel.queue_delete(queue)
            finally:
                channel.close()
