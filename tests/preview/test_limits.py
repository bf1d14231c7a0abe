"""Rate limit and endpoint helpers: pure decisions from tables, then the rate limiter racing on real Redis."""

from __future__ import annotations

import pytest
import redis

from tasks.endpoint import backoff_s, describe_error
from tasks.limits import RateLimiter, Verdict, rate_verdict
from tests.preview.conftest import race


@pytest.mark.parametrize("granted,now,per_minute,allowed,retry", [
    ([], 100.0, 2, True, 0.0),
    ([100.0], 100.0, 2, True, 0.0),
    ([100.0, 100.0], 100.0, 2, False, 60.0),
    ([50.0, 90.0], 100.0, 2, False, 10.0),        # the older grant leaves the window at 110
    ([30.0, 90.0], 100.0, 2, True, 0.0),          # 30 is more than a minute ago
    ([95.0, 50.0, 90.0], 100.0, 2, False, 50.0),  # any order; the oldest of the last two is 90
    ([1.0], 1.0, 1, False, 60.0),
])
def test_rate_verdict(granted: list[float], now: float, per_minute: int, allowed: bool, retry: float) -> None:
    assert rate_verdict(granted, now, per_minute) == Verdict(allowed, pytest.approx(retry))


def test_rate_verdict_never_grants_more_than_per_minute_in_any_minute() -> None:
    granted: list[float] = []
    for tenth in range(0, 3000):
        now = tenth / 10
        if rate_verdict(granted, now, 10).allowed:
            granted.append(now)
    assert all(sum(1 for g in granted if start <= g < start + 60) <= 10 for start in range(0, 240))
    assert len(granted) == 50  # a burst of 10 every 60 s over 300 s


@pytest.mark.parametrize("attempt,jitter,pause", [(1, 1.0, 0.5), (2, 1.0, 1.0), (3, 0.5, 1.0), (5, 1.0, 8.0),
                                                  (9, 1.0, 8.0)])
def test_backoff(attempt: int, jitter: float, pause: float) -> None:
    assert backoff_s(attempt, jitter=jitter) == pause


@pytest.mark.parametrize("error,line", [
    ("injected failure", "injected failure"),
    ('{"error_type": "<class \'ValueError\'>", "error_message": "boom", "error_traceback": "..."}',
     "ValueError: boom"),
    (None, "no error given"),
    ({"detail": 1}, '{"detail": 1}'),
])
def test_describe_error(error: object, line: str) -> None:
    assert describe_error(error) == line


def test_rate_limiter_in_redis_grants_exactly_the_burst_to_racing_clients(redis_url: str) -> None:
    verdicts = race(12, lambda: RateLimiter(redis.Redis.from_url(redis_url), per_minute=5).acquire("alice"))
    assert sum(v.allowed for v in verdicts) == 5
    assert all(50 < v.retry_after_s <= 60 for v in verdicts if not v.allowed)
    assert RateLimiter(redis.Redis.from_url(redis_url), per_minute=5).acquire("bob").allowed
    ttl = redis.Redis.from_url(redis_url).pttl("audiobook:preview:rate:alice")
    assert 0 < ttl <= 61_000
