"""AUDIOBOOK_MAX_HOLD_S resolved per broker: a limit under RabbitMQ's consumer_timeout by default, none on Redis."""

from __future__ import annotations

import pytest

from settings import AMQP_DEFAULT_HOLD_S, Settings
from tasks.chapter import hold_limit_s


@pytest.mark.parametrize("env,expected", [
    ({"CELERY_BROKER_URL": "redis://localhost:6379/0"}, None),
    ({"CELERY_BROKER_URL": "sentinel://h1:26379;sentinel://h2:26379", "AUDIOBOOK_REDIS_MASTER_NAME": "main"}, None),
    ({"CELERY_BROKER_URL": "amqp://guest:guest@localhost:5672//"}, AMQP_DEFAULT_HOLD_S),
    ({"CELERY_BROKER_URL": "amqp://h//", "AUDIOBOOK_MAX_HOLD_S": "600"}, 600.0),
    ({"CELERY_BROKER_URL": "redis://h/0", "AUDIOBOOK_MAX_HOLD_S": "900"}, 900.0),
    ({"CELERY_BROKER_URL": "amqp://h//", "AUDIOBOOK_MAX_HOLD_S": "0"}, None),
    ({"CELERY_BROKER_URL": "amqp://h//", "AUDIOBOOK_MAX_HOLD_S": ""}, AMQP_DEFAULT_HOLD_S),
])
def test_hold_limit_per_broker(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: float | None) -> None:
    monkeypatch.delenv("AUDIOBOOK_MAX_HOLD_S", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert hold_limit_s(Settings()) == expected
