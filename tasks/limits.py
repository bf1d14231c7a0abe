"""Preview limits shared by every control worker through Redis: a per-requester rate and a spend cap.

The decisions are pure functions of numbers and a clock, tested from tables. The Redis classes only load
and store their state inside a WATCH transaction, so two workers can never both take the last slot; the
clock is Redis's own, so workers with skewed clocks still agree.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from scaler.redis_client import is_redis_url, redis_client
from settings import get_settings

RATE_WINDOW_S = 60.0
SPEND_WINDOW_S = 3600
_BUCKET_S = 60


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


def spend_in_window(spent: Mapping[int, float], now: float) -> float:
    """USD spent in the last hour, from per-minute buckets keyed by minute number."""
    current = int(now // _BUCKET_S)
    return sum(usd for minute, usd in spent.items() if minute > current - SPEND_WINDOW_S // _BUCKET_S)


def spend_verdict(spent: Mapping[int, float], now: float, cap_usd: float, reserve_usd: float) -> Verdict:
    """May `reserve_usd` more be spent with at most `cap_usd` in any hour? If not, when enough ages out.

    A bucket for minute m leaves the window at (m + 60) minutes. When even an empty window cannot hold
    `reserve_usd`, retry_after_s is infinite.
    """
    current = int(now // _BUCKET_S)
    live = sorted((m, usd) for m, usd in spent.items() if m > current - SPEND_WINDOW_S // _BUCKET_S)
    total = sum(usd for _, usd in live)
    if total + reserve_usd <= cap_usd + 1e-12:
        return Verdict(True)
    if reserve_usd > cap_usd:
        return Verdict(False, math.inf)
    for minute, usd in live:
        total -= usd
        if total + reserve_usd <= cap_usd + 1e-12:
            return Verdict(False, max(0.0, (minute * _BUCKET_S + SPEND_WINDOW_S) - now))
    return Verdict(False, SPEND_WINDOW_S)  # unreachable: an empty window holds any reserve <= cap


@dataclass(frozen=True)
class Reservation:
    minute: int
    usd: float


class RateLimiter:
    """Per-requester sliding window in Redis: a sorted set of grant times that expires with the window."""

    def __init__(self, client: redis.Redis, per_minute: int, prefix: str = "audiobook:preview:rate:") -> None:
        self.client = client
        self.per_minute = per_minute
        self.prefix = prefix

    def acquire(self, requester: str) -> Verdict:
        key = self.prefix + requester

        def attempt(pipe: redis.client.Pipeline) -> Verdict:
            now = _redis_now(pipe)
            granted = [score for _, score in pipe.zrangebyscore(key, now - RATE_WINDOW_S, "+inf", withscores=True)]
            verdict = rate_verdict(granted, now, self.per_minute)
            if verdict.allowed:
                pipe.multi()
                pipe.zremrangebyscore(key, "-inf", now - RATE_WINDOW_S)
                pipe.zadd(key, {uuid.uuid4().hex: now})
                pipe.pexpire(key, int(RATE_WINDOW_S * 1000) + 1000)
            return verdict

        return self.client.transaction(attempt, key, value_from_callable=True)


class SpendMeter:
    """Serverless spend per minute in one Redis hash; the last hour of it is held against the cap.

    A call reserves its worst case before it starts and settles to what RunPod billed afterwards, so
    concurrent previews cannot overshoot the cap together.
    """

    def __init__(self, client: redis.Redis, cap_usd_per_hour: float, key: str = "audiobook:preview:spend") -> None:
        self.client = client
        self.cap_usd = cap_usd_per_hour
        self.key = key

    def reserve(self, usd: float) -> Reservation | Verdict:
        """A Reservation, or the refusing Verdict (with its retry time)."""

        def attempt(pipe: redis.client.Pipeline) -> Reservation | Verdict:
            now = _redis_now(pipe)
            spent = {int(m): float(v) for m, v in pipe.hgetall(self.key).items()}
            verdict = spend_verdict(spent, now, self.cap_usd, usd)
            if not verdict.allowed:
                return verdict
            minute = int(now // _BUCKET_S)
            stale = [str(m) for m in spent if m <= minute - SPEND_WINDOW_S // _BUCKET_S]
            pipe.multi()
            pipe.hincrbyfloat(self.key, str(minute), usd)
            if stale:
                pipe.hdel(self.key, *stale)
            pipe.expire(self.key, 2 * SPEND_WINDOW_S)
            return Reservation(minute, usd)

        return self.client.transaction(attempt, self.key, value_from_callable=True)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace a reservation by what was billed (in the reservation's minute)."""
        self.client.hincrbyfloat(self.key, str(reservation.minute), actual_usd - reservation.usd)

    def spent_last_hour(self) -> float:
        now = _redis_now(self.client)
        return spend_in_window({int(m): float(v) for m, v in self.client.hgetall(self.key).items()}, now)


def _redis_now(client: redis.Redis | redis.client.Pipeline) -> float:
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
