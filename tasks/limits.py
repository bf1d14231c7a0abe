"""Preview limits shared by every control worker through Redis: the per-requester rate, and where they live.

The decision is a pure function of numbers and a clock, tested from tables. The Redis class only loads and
stores its state inside a WATCH transaction, so two workers can never both take the last slot; the clock is
Redis's own, so workers with skewed clocks still agree. Spend limits: tasks.spend and tasks.spend_meter.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from scaler.redis_client import is_redis_url, redis_client
from settings import get_settings

RATE_WINDOW_S = 60.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: float = 0.0


def rate_verdict(granted: Sequence[float], now: float, per_minute: int) -> Verdict:
    """At most `per_minute` grants in any 60 s: `granted` holds the times of earlier grants."""
    recent = sorted(t for t in granted if t > now - RATE_WINDOW_S)
    if len(recent) < per_minute:
        return Verdict(True)
    return Verdict(False, recent[-per_minute] + RATE_WINDOW_S - now)


class RateLimiter:
    """Per-requester sliding window in Redis: a sorted set of grant times that expires with the window."""

    def __init__(self, client: redis.Redis, per_minute: int, prefix: str = "audiobook:preview:rate:") -> None:
        self.client = client
        self.per_minute = per_minute
        self.prefix = prefix

    def acquire(self, requester: str) -> Verdict:
        key = self.prefix + requester

        def attempt(pipe: redis.client.Pipeline) -> Verdict:
            now = redis_now(pipe)
            granted = [score for _, score in pipe.zrangebyscore(key, now - RATE_WINDOW_S, "+inf", withscores=True)]
            verdict = rate_verdict(granted, now, self.per_minute)
            if verdict.allowed:
                pipe.multi()
                pipe.zremrangebyscore(key, "-inf", now - RATE_WINDOW_S)
                pipe.zadd(key, {uuid.uuid4().hex: now})
                pipe.pexpire(key, int(RATE_WINDOW_S * 1000) + 1000)
            return verdict

        return self.client.transaction(attempt, key, value_from_callable=True)


def redis_now(client: redis.Redis | redis.client.Pipeline) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@functools.cache
def limits_redis() -> redis.Redis:
    """The Redis holding preview limits: the result backend's, else the broker's (it must be Redis)."""
    from tasks import app

    s = get_settings()
    for url, options in ((s.backend_url, app.conf.result_backend_transport_options),
                         (s.broker_url.get_secret_value(), app.conf.broker_transport_options)):
        if is_redis_url(url):
            return redis_client(url, options)
    raise RuntimeError("preview limits need Redis: neither CELERY_RESULT_BACKEND nor CELERY_BROKER_URL is Redis")


def key_prefix() -> str:
    """Keys share the broker's `global_keyprefix`, so several deployments can share one Redis."""
    return get_settings().broker_keyprefix + "audiobook:preview:"
