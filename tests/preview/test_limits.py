"""Rate limit and spend cap: pure decisions from tables, then the Redis classes racing on real Redis."""

from __future__ import annotations

import math
import threading

import pytest
import redis

from tasks.endpoint import backoff_s, describe_error
from tasks.limits import RateLimiter, Reservation, SpendMeter, Verdict, rate_verdict, spend_in_window, spend_verdict


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


H = 3600
MINUTE = 60


@pytest.mark.parametrize("spent,now,cap,reserve,allowed,retry", [
    ({}, 10 * H, 2.0, 0.5, True, 0.0),
    ({600: 1.5}, 10 * H, 2.0, 0.5, True, 0.0),                  # exactly the cap is fine
    ({600: 1.5}, 10 * H, 2.0, 0.6, False, 3600.0),              # minute 600 leaves at minute 660
    ({541: 1.0, 599: 1.0}, 10 * H, 2.0, 0.5, False, 60.0),      # the oldest leaves first
    ({541: 0.2, 599: 1.8}, 10 * H, 2.0, 0.5, False, 3540.0),    # the oldest is not enough
    ({540: 5.0}, 10 * H, 2.0, 0.5, True, 0.0),                  # an hour old: out of the window
    ({}, 0.0, 0.1, 0.5, False, math.inf),                       # one call costs more than the cap
    ({}, 0.0, 0.0, 0.01, False, math.inf),
])
def test_spend_verdict(spent: dict[int, float], now: float, cap: float, reserve: float, allowed: bool,
                       retry: float) -> None:
    verdict = spend_verdict(spent, now, cap, reserve)
    assert verdict == Verdict(allowed, pytest.approx(retry))


def test_spend_in_window() -> None:
    assert spend_in_window({540: 5.0, 541: 1.0, 600: 0.5}, 10 * H) == pytest.approx(1.5)


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


def _race(count: int, action) -> list:  # noqa: ANN001
    results: list = []
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_rate_limiter_in_redis_grants_exactly_the_burst_to_racing_clients(redis_url: str) -> None:
    verdicts = _race(12, lambda: RateLimiter(redis.Redis.from_url(redis_url), per_minute=5).acquire("alice"))
    assert sum(v.allowed for v in verdicts) == 5
    assert all(50 < v.retry_after_s <= 60 for v in verdicts if not v.allowed)
    assert RateLimiter(redis.Redis.from_url(redis_url), per_minute=5).acquire("bob").allowed
    ttl = redis.Redis.from_url(redis_url).pttl("audiobook:preview:rate:alice")
    assert 0 < ttl <= 61_000


def test_spend_meter_in_redis_never_overshoots_and_settles_to_the_bill(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    meter = SpendMeter(client, cap_usd_per_hour=1.0)
    reservations = _race(10, lambda: SpendMeter(redis.Redis.from_url(redis_url), 1.0).reserve(0.3))
    granted = [r for r in reservations if isinstance(r, Reservation)]
    refused = [r for r in reservations if isinstance(r, Verdict)]
    assert len(granted) == 3 and len(refused) == 7
    assert all(3500 < v.retry_after_s <= 3600 for v in refused)
    for reservation in granted:
        meter.settle(reservation, 0.01)  # RunPod billed far less than the worst case
    assert meter.spent_last_hour() == pytest.approx(0.03)
    assert isinstance(meter.reserve(0.3), Reservation)
